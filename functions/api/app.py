"""api: the HTTP API (API Gateway HTTP API, JWT authorizer in front).

Routes are here; everything they do is a service of the layer: ``PhotoService`` for
a user's photos and uploads, ``StatsService`` for stats, metrics, tiers and buckets,
``Operations`` for the admin runs (executed by the functions that own them),
``CleanupService.health`` and the dashboard. Request bodies, query and path parameters
are validated by Powertools against the pydantic models of ``functions.api.schemas``, which
also make the OpenAPI document (``GET /openapi.json``).

Errors answer ``{"error": {"code", "message"}}`` with 400/401/403/404/409/413/422/503,
never a stack trace; a bug answers 500 with a request id to find it in the logs.
Events: API Gateway HTTP API v2 requests (events/api/).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from shelflife import __version__, wiring
from shelflife.domain.auth import Caller, caller_from_claims
from shelflife.domain.clock import utc_now
from shelflife.domain.errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    NotAuthenticated,
    OperationFailed,
    RecordNotFound,
    ShelflifeError,
    StorageError,
    TooLarge,
)
from shelflife.domain.records import RunKind
from shelflife.domain.uploads import PLAIN_ID
from shelflife.services.stats import MAX_METRIC_DAYS
from shelflife.settings import Settings

from . import dashboard
from .schemas import (
    BreakdownResponse,
    BucketsResponse,
    CleanupStatus,
    ErrorResponse,
    GatewayError,
    Health,
    LifecycleMetrics,
    OldImagesRequest,
    OperationResponse,
    Photo,
    PhotoId,
    PhotoPage,
    PhotoUrl,
    PublishFailure,
    PublishRequest,
    PublishResponse,
    Recommendation,
    RecommendationsResponse,
    ReconcileRequest,
    ReconcileRun,
    RedriveRequest,
    RunRequest,
    StatsResponse,
    TierShare,
    TierUsage,
    UploadRequest,
    UploadResponse,
    UsageResponse,
)

settings = Settings.from_env()
services = wiring.api(settings)
repository = services.repository
photos = services.photos
cleanup = services.cleanup
stats = services.stats
operations = services.operations
logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)
app.configure_openapi(
    title="shelflife",
    version=__version__,
    description="A serverless image store that keeps itself cheap and healthy.",
    security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
)

# Documented with every route: the errors it may answer.
ERRORS: dict[int, Any] = {
    status: {
        "description": description,
        # The gateway answers 401 itself when the token is missing or invalid.
        "content": {
            "application/json": {
                "model": ErrorResponse | GatewayError if status == 401 else ErrorResponse
            }
        },
    }
    for status, description in (
        (400, "Invalid request"),
        (401, "No valid token"),
        (403, "Not allowed (admin route, quota)"),
        (404, "No such photo or route"),
        (409, "Conflicts with what is stored"),
        (413, "Declared size over the limit"),
        (415, "Body not JSON"),
        (422, "Request does not match the schema"),
        (503, "Try again later"),
    )
}


def answers(model: type | None, status: int = 200) -> dict[int, Any]:
    """A route's documented responses: its success (the model it returns) and the
    errors any route may answer. (Given ``responses``, Powertools documents only
    those, so the success is listed here too.)"""
    content: dict[str, Any] = (
        {"model": model} if model is not None else {"schema": {"type": "object"}}
    )
    return {status: {"description": "Success", "content": {"application/json": content}}, **ERRORS}


# Every route but the public ones takes the bearer token (the document says so per
# operation: Powertools leaves an empty ``security`` out).
TOKEN: list[dict[str, list[str]]] = [{"jwt": []}]
# The routes template.yaml leaves without the authorizer.
PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/openapi.json")}


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def error(status: int, code: str, message: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=error_body(code, message),
    )


def caller() -> Caller:
    context = app.current_event.request_context
    authorizer = context.authorizer
    claims = authorizer.jwt_claim if authorizer is not None else None
    scopes = authorizer.jwt_scopes if authorizer is not None else None
    return caller_from_claims(claims, scopes, settings)


def admin() -> Caller:
    who = caller()
    who.require_admin()
    return who


# ---- errors ---------------------------------------------------------------------------


def invalid_request(e: RequestValidationError) -> Response[str]:
    problems = []
    for item in e.errors():
        where = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return error(422, "validation_failed", "; ".join(problems) or "invalid request")


def known_error(e: ShelflifeError) -> Response[str]:
    if isinstance(e, NotAuthenticated):
        return error(401, "unauthenticated", str(e))
    if isinstance(e, Forbidden):
        return error(403, e.code, str(e))
    if isinstance(e, RecordNotFound):
        return error(404, "not_found", str(e))
    if isinstance(e, Conflict):
        return error(409, "conflict", str(e))
    if isinstance(e, TooLarge):
        return error(413, "too_large", str(e))
    if isinstance(e, InvalidArgument):
        return error(400, "invalid_argument", str(e))
    if isinstance(e, OperationFailed):
        logger.error("operation failed", extra={"error": str(e)})
        return error(502, "operation_failed", str(e))
    if isinstance(e, StorageError) and e.retryable:
        # A provider's answer (DynamoDB's, S3's) stays in the log: not for the caller.
        logger.warning("temporarily unavailable", extra={"error": str(e)})
        message = f"the store is busy or unavailable; try again (request {request_id()})"
        return error(503, "unavailable", message)
    if e.retryable:
        logger.warning("temporarily unavailable", extra={"error": str(e)})
        return error(503, "unavailable", str(e))
    logger.exception("unexpected shelflife error")
    return error(500, "internal", f"internal error (request {request_id()})")


def unsupported_type(e: RequestUnsupportedContentType) -> Response[str]:
    return error(415, "unsupported_media_type", "request bodies are JSON (application/json)")


def undecodable_body(e: UnicodeDecodeError) -> Response[str]:
    # A base64 body that is not UTF-8 text (Powertools decodes it before validation).
    return error(400, "invalid_body", "the request body is not UTF-8 text (JSON expected)")


def unexpected_error(e: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return error(500, "internal", f"internal error (request {request_id()})")


# Registered without the decorator syntax: Powertools' decorator is untyped.
app.exception_handler(RequestValidationError)(invalid_request)
app.exception_handler(ShelflifeError)(known_error)
app.exception_handler(UnicodeDecodeError)(undecodable_body)
app.exception_handler(RequestUnsupportedContentType)(unsupported_type)
app.exception_handler(Exception)(unexpected_error)


@app.not_found
def no_route(e: NotFoundError) -> Response[str]:
    event = app.current_event
    allowed = sorted(
        route.method
        for route in app._static_routes + app._dynamic_routes
        if route.rule.match(event.path)
    )
    if allowed:
        answer = error(
            405,
            "method_not_allowed",
            f"{event.path} takes {', '.join(allowed)}, not {event.http_method}",
        )
        answer.headers["Allow"] = ", ".join(allowed)
        return answer
    return error(404, "no_route", f"no route {event.http_method} {event.path}")


def request_id() -> str:
    return str(app.current_event.request_context.request_id or "unknown")


# ---- public ---------------------------------------------------------------------------


@app.get("/health", summary="Liveness", tags=["public"])
def health() -> Health:
    return Health(status="ok", version=__version__)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200, content_type="application/json", body=app.get_openapi_json_schema()
    )


# ---- uploads and photos ---------------------------------------------------------------


@app.post(
    "/uploads",
    security=TOKEN,
    summary="A presigned POST for one upload to the upload bucket",
    status_code=201,
    tags=["photos"],
    responses=answers(UploadResponse, 201),
)
def create_upload(request: UploadRequest) -> UploadResponse:
    ticket = photos.create_upload(
        caller(),
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        draft_id=request.draft_id,
    )
    return UploadResponse(
        upload_id=ticket.upload_id,
        key=ticket.key,
        url=ticket.form.url,
        fields=ticket.form.fields,
        max_bytes=ticket.max_bytes,
        expires_at=ticket.expires_at,
    )


@app.get(
    "/photos",
    security=TOKEN,
    summary="The caller's photos, newest first",
    tags=["photos"],
    responses=answers(PhotoPage),
)
def list_photos(
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> PhotoPage:
    page = photos.list_photos(caller(), limit=limit, cursor=cursor)
    return PhotoPage(items=[Photo.of(image) for image in page.items], cursor=page.cursor)


@app.get(
    "/photos/<photo_id>",
    security=TOKEN,
    summary="One photo",
    tags=["photos"],
    responses=answers(Photo),
)
def get_photo(photo_id: Annotated[PhotoId, Path()]) -> Photo:
    return Photo.of(photos.get(caller(), photo_id))


@app.get(
    "/photos/<photo_id>/url",
    security=TOKEN,
    summary="A short-lived URL to read the photo (records the access)",
    tags=["photos"],
    responses=answers(PhotoUrl),
)
def photo_url(
    photo_id: Annotated[PhotoId, Path()],
    expires_in: Annotated[int | None, Query(ge=1, le=settings.url_expiry_seconds)] = None,
) -> PhotoUrl:
    answer = photos.url(caller(), photo_id, expires_in=expires_in)
    return PhotoUrl(id=answer.image.id, url=answer.url, expires_at=answer.expires_at)


@app.delete(
    "/photos/<photo_id>",
    security=TOKEN,
    summary="Delete a photo (its object follows through the cleanup function)",
    tags=["photos"],
    responses=answers(Photo),
)
def delete_photo(photo_id: Annotated[PhotoId, Path()]) -> Photo:
    return Photo.of(photos.delete(caller(), photo_id))


@app.post(
    "/drafts/<draft_id>/publish",
    security=TOKEN,
    summary="Publish photos of a draft (deleted after the retention period)",
    tags=["photos"],
    responses=answers(PublishResponse),
)
def publish_draft(
    draft_id: Annotated[str, Path(pattern=PLAIN_ID.pattern)],
    request: PublishRequest,
) -> PublishResponse:
    result = photos.publish(caller(), draft_id, request.photo_ids)
    return PublishResponse(
        draft_id=draft_id,
        updated=result.updated,
        failed=[PublishFailure(id=key, reason=value) for key, value in result.failed.items()],
    )


@app.get(
    "/users/me/usage",
    security=TOKEN,
    summary="The caller's photos and bytes by tier, and quota",
    tags=["photos"],
    responses=answers(UsageResponse),
)
def my_usage() -> UsageResponse:
    usage = photos.usage(caller())
    return UsageResponse(
        user_id=usage.user_id,
        tiers={tier: TierUsage(**asdict(value)) for tier, value in usage.tiers.items()},
        photos=usage.photos,
        bytes=usage.bytes,
        quota_bytes=usage.quota_bytes,
        remaining_bytes=usage.remaining_bytes,
    )


# ---- stats and metrics ----------------------------------------------------------------


@app.get(
    "/stats",
    security=TOKEN,
    summary="Sizes and monthly cost per tier",
    tags=["stats"],
    responses=answers(StatsResponse),
)
def get_stats() -> StatsResponse:
    caller()
    return StatsResponse.model_validate(stats.stats(), from_attributes=True)


@app.get(
    "/stats/breakdown",
    security=TOKEN,
    summary="Cost and share per tier",
    tags=["stats"],
    responses=answers(BreakdownResponse),
)
def get_breakdown() -> BreakdownResponse:
    caller()
    return BreakdownResponse(tiers=[TierShare(**item) for item in stats.breakdown()])


@app.get(
    "/metrics/lifecycle",
    security=TOKEN,
    summary="Uploaded, promoted, archived, restored, deleted in the last days",
    tags=["stats"],
    responses=answers(LifecycleMetrics),
)
def lifecycle_metrics(
    days: Annotated[int, Query(ge=1, le=MAX_METRIC_DAYS)] = 30,
) -> LifecycleMetrics:
    caller()
    activity = stats.activity(days)
    return LifecycleMetrics(days=activity.days, counts=activity.counts)


@app.get(
    "/metrics/recommendations",
    security=TOKEN,
    summary="What an operator should look at",
    tags=["stats"],
    responses=answers(RecommendationsResponse),
)
def recommendations() -> RecommendationsResponse:
    admin()
    return RecommendationsResponse(
        items=[Recommendation.model_validate(item) for item in stats.recommendations()]
    )


@app.get(
    "/tiers",
    security=TOKEN,
    summary="Tiers, backends, prices and rules",
    tags=["stats"],
    responses=answers(None),
)
def tiers() -> dict[str, Any]:
    caller()
    return stats.tiers()


# ---- admin ----------------------------------------------------------------------------


@app.get(
    "/buckets",
    security=TOKEN,
    summary="Per-bucket usage and thresholds",
    tags=["admin"],
    responses=answers(BucketsResponse),
)
def buckets() -> BucketsResponse:
    admin()
    return BucketsResponse(buckets=stats.buckets())


@app.post(
    "/lifecycle/run",
    security=TOKEN,
    summary="Run the lifecycle now",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def lifecycle_run(request: RunRequest) -> OperationResponse:
    admin()
    answer = operations.lifecycle_run(dry_run=request.dry_run, request_id=request_id())
    return OperationResponse(**answer)


@app.post(
    "/capacity/run",
    security=TOKEN,
    summary="Check capacity now",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def capacity_run(request: RunRequest) -> OperationResponse:
    admin()
    return OperationResponse(**operations.capacity_run(dry_run=request.dry_run))


@app.post(
    "/cleanup/old-images",
    security=TOKEN,
    summary="Age-based cleanup of a tier or bucket (dry run by default)",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def old_images(request: OldImagesRequest) -> OperationResponse:
    admin()
    answer = operations.old_images_cleanup(
        tier=request.tier,
        bucket=request.bucket,
        dry_run=request.dry_run,
        threshold_percent=request.threshold_percent,
    )
    return OperationResponse(**answer)


@app.get(
    "/reconcile",
    security=TOKEN,
    summary="The latest reconciliation",
    tags=["admin"],
    responses=answers(ReconcileRun),
)
def latest_reconcile() -> ReconcileRun:
    admin()
    runs = repository.recent_runs(RunKind.RECONCILE, limit=1)
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


@app.post(
    "/reconcile",
    security=TOKEN,
    summary="Reconcile buckets and table (report; fix on request; continue by run_id)",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def reconcile(request: ReconcileRequest) -> OperationResponse:
    admin()
    answer = operations.reconcile(fix=request.fix, adopt=request.adopt, run_id=request.run_id)
    return OperationResponse(**answer)


@app.get(
    "/cleanup",
    security=TOKEN,
    summary="Cleanup health",
    tags=["admin"],
    responses=answers(CleanupStatus),
)
def cleanup_status() -> CleanupStatus:
    admin()
    return CleanupStatus(**cleanup.health().as_dict())


@app.post(
    "/cleanup/redrive",
    security=TOKEN,
    summary="Replay the cleanup dead-letter queue",
    tags=["admin"],
    responses=answers(OperationResponse),
)
def cleanup_redrive(request: RedriveRequest) -> OperationResponse:
    admin()
    return OperationResponse(**operations.redrive(max_messages=request.max_messages))


@app.get(
    "/dashboard",
    security=TOKEN,
    summary="The dashboard (HTML)",
    tags=["admin"],
    responses={
        200: {"description": "The dashboard page", "content": {"text/html": {"schema": {}}}},
        **{status: ERRORS[status] for status in (401, 403)},
    },
)
def show_dashboard() -> Response[str]:
    admin()
    page = dashboard.render(
        dashboard.DashboardData(
            stats=stats.stats(),
            buckets=stats.buckets(),
            runs=stats.lifecycle_runs(30),
            cleanup=cleanup.health(),
            recommendations=stats.recommendations(),
            cleanup_threshold_percent=settings.cleanup_threshold_percent,
            overflow_threshold_percent=settings.overflow_threshold_percent,
            generated_at=utc_now(),
        )
    )
    return Response(
        status_code=HTTPStatus.OK,
        content_type="text/html; charset=utf-8",
        body=page,
        headers={"Content-Security-Policy": dashboard.CONTENT_SECURITY_POLICY},
    )


@logger.inject_lambda_context(clear_state=True, correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refused = (
        without_identity(event)
        or not_json(event)
        or unreadable_json(event)
        or empty_parameters(event)
    )
    if refused is not None:
        return refused
    return app.resolve(event, context)


def empty_parameters(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 422 for ``?days=``: Powertools would take an empty value for an absent one
    (the default); no parameter of this API has a meaning when empty."""
    empty = sorted(k for k, v in (event.get("queryStringParameters") or {}).items() if v == "")
    if not empty:
        return None
    message = "; ".join(f"query.{name}: empty value" for name in empty)
    return refusal(422, "validation_failed", message)


def not_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 415 for a body that is not JSON: every route's body is, and Powertools'
    multipart parser raises a bare ValueError on a boundary-less form (a 500)."""
    if not event.get("body"):
        return None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return None
    message = f"request bodies are JSON (application/json), not {kind}"
    return refusal(415, "unsupported_media_type", message)


def unreadable_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 for a JSON body Python's parser cannot take: nested deeper than its
    recursion limit (a RecursionError), an integer of more than 4,300 digits (a
    ValueError). Powertools would parse it in the resolver, and either was a 500."""
    body = event.get("body")
    if not body:
        return None
    try:
        text = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
        json.loads(text)
    except (RecursionError, ValueError, UnicodeError) as e:
        # A UnicodeDecodeError is a ValueError too; a JSON syntax error is left to the
        # resolver's validation (a 422 naming where), as before.
        if isinstance(e, json.JSONDecodeError):
            return None
        what = "nested too deeply" if isinstance(e, RecursionError) else "not readable JSON"
        return refusal(400, "invalid_body", f"the request body is {what}")
    return None


def refusal(status: int, code: str, message: str) -> dict[str, Any]:
    """An error answered before the resolver runs, in the same shape as ``error``."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": error_body(code, message),
        "isBase64Encoded": False,
    }


def without_identity(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 401 for a request to a route that needs a token and came without one. The
    gateway's authorizer already refuses those; this holds if a route is ever left
    open by mistake, and answers before the body is validated (a 422 would tell an
    anonymous caller more than "log in")."""
    context = event.get("requestContext") or {}
    route = ((context.get("http") or {}).get("method"), event.get("rawPath"))
    if route in PUBLIC_ROUTES:
        return None
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    if claims.get("sub"):
        return None
    return refusal(401, "unauthenticated", "this route needs a bearer token")
