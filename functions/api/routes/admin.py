"""The admin routes: buckets, and the runs executed by the functions that own them
(lifecycle, capacity, age-based cleanup, reconciliation, the cleanup's redrive and
health)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from shelflife.domain.audit import user_actor
from shelflife.domain.errors import RecordNotFound
from shelflife.domain.records import RunKind

from ..common import TOKEN, admin, answers, request_id, services
from ..schemas import (
    BucketsResponse,
    CleanupStatus,
    ImportRequest,
    OldImagesRequest,
    OperationResponse,
    ReconcileRequest,
    ReconcileRun,
    RedriveRequest,
    RunRequest,
)

# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/buckets",
    security=TOKEN,
    summary="Per-bucket usage and thresholds",
    tags=["admin"],
    responses=answers(BucketsResponse),
)
def buckets() -> BucketsResponse:
    admin(router)
    return BucketsResponse(buckets=services(router).stats.buckets())


@router.post(
    "/lifecycle/run",
    security=TOKEN,
    summary="Run the lifecycle now",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def lifecycle_run(request: RunRequest) -> OperationResponse:
    admin(router)
    answer = services(router).operations.lifecycle_run(
        dry_run=request.dry_run, request_id=request_id(router)
    )
    return OperationResponse(**answer)


@router.post(
    "/lifecycle/reschedule",
    security=TOKEN,
    summary="Recompute every image's schedule after a change of the policy settings",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def lifecycle_reschedule(request: RunRequest) -> OperationResponse:
    admin(router)
    answer = services(router).operations.reschedule(
        dry_run=request.dry_run, request_id=request_id(router)
    )
    return OperationResponse(**answer)


@router.post(
    "/capacity/run",
    security=TOKEN,
    summary="Check capacity now",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def capacity_run(request: RunRequest) -> OperationResponse:
    admin(router)
    return OperationResponse(**services(router).operations.capacity_run(dry_run=request.dry_run))


@router.post(
    "/cleanup/old-images",
    security=TOKEN,
    summary="Age-based cleanup of a tier or bucket (dry run by default)",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def old_images(request: OldImagesRequest) -> OperationResponse:
    who = admin(router)
    answer = services(router).operations.old_images_cleanup(
        requested_by=user_actor(who.user_id, admin=True),
        tier=request.tier,
        bucket=request.bucket,
        dry_run=request.dry_run,
        threshold_percent=request.threshold_percent,
    )
    return OperationResponse(**answer)


@router.get(
    "/reconcile",
    security=TOKEN,
    summary="The latest reconciliation",
    tags=["admin"],
    responses=answers(ReconcileRun),
)
def latest_reconcile() -> ReconcileRun:
    admin(router)
    runs = services(router).repository.recent_runs(RunKind.RECONCILE, limit=1)
    if not runs:
        raise RecordNotFound("no reconciliation has run yet; POST /reconcile starts one")
    run = runs[0]
    return ReconcileRun(
        run_id=run.id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=run.status.value,
        counts=dict(run.counts),
        report=run.details,
    )


@router.post(
    "/reconcile",
    security=TOKEN,
    summary="Reconcile buckets and table (report; fix on request; continue by run_id)",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def reconcile(request: ReconcileRequest) -> OperationResponse:
    admin(router)
    answer = services(router).operations.reconcile(
        fix=request.fix, adopt=request.adopt, run_id=request.run_id
    )
    return OperationResponse(**answer)


@router.post(
    "/imports",
    security=TOKEN,
    summary="Import a bucket of existing photos (dry run by default; continue by run_id)",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def imports(request: ImportRequest) -> OperationResponse:
    who = admin(router)
    answer = services(router).operations.imports(
        request.model_dump(), requested_by=user_actor(who.user_id, admin=True)
    )
    return OperationResponse(**answer)


@router.get(
    "/cleanup",
    security=TOKEN,
    summary="Cleanup health",
    tags=["admin"],
    responses=answers(CleanupStatus),
)
def cleanup_status() -> CleanupStatus:
    admin(router)
    return CleanupStatus(**services(router).cleanup.health().as_dict())


@router.post(
    "/cleanup/redrive",
    security=TOKEN,
    summary="Replay the cleanup dead-letter queue",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def cleanup_redrive(request: RedriveRequest) -> OperationResponse:
    admin(router)
    return OperationResponse(
        **services(router).operations.redrive(max_messages=request.max_messages)
    )
