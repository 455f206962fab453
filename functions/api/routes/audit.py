"""The audit trail read back: a photo's history for its owner, a search for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from shelflife.domain.audit import MAX_AUDIT_DAYS, AuditEntry, AuditQuery
from shelflife.domain.clock import now
from shelflife.domain.errors import Unavailable
from shelflife.domain.records import ChangeAction, Page
from shelflife.services.audit import AuditService

from ..common import TOKEN, admin, answers, caller, services
from ..schemas import AuditEntryAnswer, AuditPage, PhotoId
from .photos import ISO_TIME, ISO_TIME_HELP, _time

# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]
# A search without ``since`` reads the last day.
DEFAULT_SPAN = timedelta(days=1)
MAX_SPAN = timedelta(days=MAX_AUDIT_DAYS)


def _service() -> AuditService:
    service = services(router).audit
    if service is None:
        raise Unavailable("this deployment keeps no audit trail (no audit table)")
    return service


def _page(page: Page[AuditEntry]) -> AuditPage:
    return AuditPage(
        items=[AuditEntryAnswer.model_validate(entry) for entry in page.items], cursor=page.cursor
    )


@router.get(
    "/photos/<photo_id>/history",
    security=TOKEN,
    summary="Every change to the photo, oldest first: what, who, why, from where to where",
    tags=["photos"],
    responses=answers(AuditPage),
)
def photo_history(
    photo_id: Annotated[PhotoId, Path()],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AuditPage:
    return _page(_service().history(caller(router), photo_id, limit=limit, cursor=cursor))


@router.get(
    "/audit",
    security=TOKEN,
    summary="The audit trail of every photo between two times, oldest first (admins)",
    tags=["admin"],
    responses=answers(AuditPage),
)
def audit(
    since: Annotated[
        str | None, Query(pattern=ISO_TIME, description=f"{ISO_TIME_HELP}; default a day ago")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=ISO_TIME, description=f"{ISO_TIME_HELP}; default now")
    ] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    action: Annotated[ChangeAction | None, Query()] = None,
    photo_id: Annotated[PhotoId | None, Query(description="one photo's, any owner's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AuditPage:
    who = admin(router)
    end = _time("until", until) or now()
    # One photo's whole trail by default (its partition is read either way); the
    # last day of everyone's.
    start = _time("since", since) or end - (MAX_SPAN if photo_id else DEFAULT_SPAN)
    query = AuditQuery(since=start, until=end, actor=actor, action=action, image_id=photo_id)
    return _page(_service().search(who, query, limit=limit, cursor=cursor))
