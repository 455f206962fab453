"""GET /dashboard: the page (``functions/api/dashboard.py``) from the stats' numbers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from shelflife.domain.clock import utc_now

from ..common import ERRORS, TOKEN, admin, services, settings
from ..dashboard import (
    DEFAULT_REFRESH_SECONDS,
    DashboardData,
    content_security_policy,
    render,
)

# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]


@router.get(
    "/dashboard",
    security=TOKEN,
    summary="The dashboard (HTML; live: it refreshes its figures every `refresh` seconds)",
    tags=["admin"],
    responses={
        200: {"description": "The dashboard page", "content": {"text/html": {"schema": {}}}},
        **{status: ERRORS[status] for status in (401, 403)},
    },
)
def show_dashboard(
    # Seconds between the page's own refreshes while visible; 0: a page with no script.
    refresh: Annotated[int, Query(ge=0, le=3600)] = DEFAULT_REFRESH_SECONDS,
) -> Response[str]:
    admin(router)
    page = render(
        DashboardData(
            stats=services(router).stats.stats(),
            buckets=services(router).stats.buckets(),
            runs=services(router).stats.lifecycle_runs(30),
            cleanup=services(router).cleanup.health(),
            recommendations=services(router).stats.recommendations(),
            cleanup_threshold_percent=settings.cleanup_threshold_percent,
            overflow_threshold_percent=settings.overflow_threshold_percent,
            generated_at=utc_now(),
            pricing=services(router).stats.last_pricing(),
        ),
        refresh,
    )
    return Response(
        status_code=HTTPStatus.OK,
        content_type="text/html; charset=utf-8",
        body=page,
        headers={"Content-Security-Policy": content_security_policy(refresh)},
    )
