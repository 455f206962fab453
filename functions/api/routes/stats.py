"""What the store holds and costs: stats, breakdown, lifecycle metrics, recommendations,
tiers."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from shelflife.domain.errors import RecordNotFound
from shelflife.services.stats import MAX_METRIC_DAYS

from ..common import TOKEN, admin, answers, caller, services
from ..schemas import (
    BreakdownResponse,
    LifecycleMetrics,
    PricingRequest,
    PricingResponse,
    Recommendation,
    RecommendationsResponse,
    StatsResponse,
    TierShare,
    WorkloadResponse,
)

# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/stats",
    security=TOKEN,
    summary="Sizes and monthly cost per tier",
    tags=["stats"],
    responses=answers(StatsResponse),
)
def get_stats() -> StatsResponse:
    caller(router)
    return StatsResponse.model_validate(services(router).stats.stats(), from_attributes=True)


@router.get(
    "/stats/breakdown",
    security=TOKEN,
    summary="Cost and share per tier",
    tags=["stats"],
    responses=answers(BreakdownResponse),
)
def get_breakdown() -> BreakdownResponse:
    caller(router)
    return BreakdownResponse(
        tiers=[TierShare(**item) for item in services(router).stats.breakdown()]
    )


@router.get(
    "/metrics/lifecycle",
    security=TOKEN,
    summary="Uploaded, promoted, archived, restored, deleted in the last days",
    tags=["stats"],
    responses=answers(LifecycleMetrics),
)
def lifecycle_metrics(
    days: Annotated[int, Query(ge=1, le=MAX_METRIC_DAYS)] = 30,
) -> LifecycleMetrics:
    caller(router)
    activity = services(router).stats.activity(days)
    return LifecycleMetrics(days=activity.days, counts=activity.counts)


@router.get(
    "/workload",
    security=TOKEN,
    summary="The measured workload: uploads, publishing, views, sizes (admin)",
    tags=["stats"],
    responses=answers(WorkloadResponse),
)
def workload(
    days: Annotated[int, Query(ge=1, le=MAX_METRIC_DAYS)] = 60,
) -> WorkloadResponse:
    admin(router)
    return WorkloadResponse(**services(router).stats.workload(days).as_dict())


@router.get(
    "/metrics/recommendations",
    security=TOKEN,
    summary="What an operator should look at",
    tags=["stats"],
    responses=answers(RecommendationsResponse),
)
def recommendations() -> RecommendationsResponse:
    admin(router)
    return RecommendationsResponse(
        items=[
            Recommendation.model_validate(item) for item in services(router).stats.recommendations()
        ]
    )


@router.get(
    "/tiers",
    security=TOKEN,
    summary="Tiers, backends, prices and rules",
    tags=["stats"],
    responses=answers(None),
)
def tiers() -> dict[str, Any]:
    caller(router)
    return services(router).stats.tiers()


@router.put(
    "/pricing",
    security=TOKEN,
    summary="Keep shelflife recommend's pricing of this workload for the dashboard (admin)",
    tags=["stats"],
    responses=answers(PricingResponse),
)
def put_pricing(request: PricingRequest) -> PricingResponse:
    admin(router)
    run = services(router).stats.record_pricing(request.model_dump())
    return PricingResponse(**request.model_dump(), priced_at=run.started_at)


@router.get(
    "/pricing",
    security=TOKEN,
    summary="The last pricing of this workload by strategy (admin)",
    tags=["stats"],
    responses=answers(PricingResponse),
)
def get_pricing() -> PricingResponse:
    admin(router)
    run = services(router).stats.last_pricing()
    if run is None or not run.details:
        raise RecordNotFound("no pricing yet: run `shelflife recommend`")
    return PricingResponse(**run.details, priced_at=run.started_at)
