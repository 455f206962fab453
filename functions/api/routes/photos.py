"""A user's photos: list, read, a URL, delete, publish a draft, usage."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter as Router

from shelflife.domain.errors import InvalidArgument, ShelflifeError
from shelflife.domain.records import ImageRecord, ImageState
from shelflife.domain.settings import TierName
from shelflife.domain.uploads import PLAIN_ID
from shelflife.services.photos import ExportFilter

from ..common import ERRORS, TOKEN, answers, caller, services, settings
from ..schemas import (
    EXPORT_COLUMNS,
    ExportedPhoto,
    ExportPage,
    Photo,
    PhotoDetail,
    PhotoId,
    PhotoPage,
    PhotoUrl,
    PublishFailure,
    PublishRequest,
    PublishResponse,
    TierUsage,
    UsageResponse,
    VariantAnswer,
)

logger = logging.getLogger(__name__)
# Powertools' Router constructor carries no annotations.
router = Router()  # type: ignore[no-untyped-call]


def _photo(image: ImageRecord) -> Photo:
    """The photo's answer, in the tier it is in now (``PhotoService.tier_of``)."""
    return Photo.of(image, services(router).photos.tier_of(image), settings.variant_widths)


@router.get(
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
    page = services(router).photos.list_photos(caller(router), limit=limit, cursor=cursor)
    return PhotoPage(items=[_photo(image) for image in page.items], cursor=page.cursor)


# Registered before /photos/<photo_id>, which would take "export" for an id.
@router.get(
    "/photos/export",
    security=TOKEN,
    summary="An export of the caller's photos (an admin's: everyone's), each with a fresh "
    "URL, as CSV or JSON, a page at a time",
    tags=["photos"],
    responses={
        200: {
            "description": "One page; the next page's cursor is in the X-Next-Cursor header "
            "(and, in JSON, in `cursor`)",
            "content": {
                "application/json": {"model": ExportPage},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **{status: ERRORS[status] for status in (400, 401, 403, 422)},
    },
)
def export_photos(
    format: Annotated[Literal["csv", "json"], Query()] = "json",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    tier: Annotated[TierName | None, Query()] = None,
    state: Annotated[ImageState | None, Query()] = None,
    since: Annotated[str | None, Query(pattern=ISO_TIME, description=ISO_TIME_HELP)] = None,
    until: Annotated[str | None, Query(pattern=ISO_TIME, description=ISO_TIME_HELP)] = None,
) -> Response[str]:
    which = ExportFilter(
        owner=owner,
        tier=tier,
        state=state,
        since=_time("since", since),
        until=_time("until", until),
    )
    page = services(router).photos.export(caller(router), which, limit=limit, cursor=cursor)
    items = [
        ExportedPhoto(
            **Photo.of(row.image, row.tier, settings.variant_widths).model_dump(),
            owner=row.image.owner,
            url=row.url,
            url_expires_at=row.url_expires_at,
        )
        for row in page.items
    ]
    headers = {"X-Next-Cursor": page.cursor} if page.cursor else {}
    if format == "json":
        body = ExportPage(items=items, cursor=page.cursor).model_dump_json()
        return Response(HTTPStatus.OK, "application/json", body, headers)
    return Response(HTTPStatus.OK, "text/csv; charset=utf-8", _csv(items), headers)


# A date or a time in ISO 8601 (a zone, or none for UTC). A string checked by its
# shape, not a datetime: pydantic would take "0.5" as a Unix time.
ISO_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"
ISO_TIME_HELP = "uploaded at or after (since) or before (until): 2026-12-05 or 2026-12-05T12:00:00Z"


def _time(name: str, text: str | None) -> datetime | None:
    """``text`` (shaped by ``ISO_TIME``) as a time; without a zone, UTC (the store's
    times all are). A date that does not exist is a 400 naming the parameter."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{name}: {text!r} is not a date or time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _csv(items: list[ExportedPhoto]) -> str:
    """The page as CSV with its header row (each page has one: pages concatenate
    by dropping the later ones', as ``shelflife export`` does)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for item in items:
        values = item.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else values[c] for c in EXPORT_COLUMNS])
    return text.getvalue()


@router.get(
    "/photos/<photo_id>",
    security=TOKEN,
    summary="One photo",
    tags=["photos"],
    responses=answers(PhotoDetail),
)
def get_photo(photo_id: Annotated[PhotoId, Path()]) -> PhotoDetail:
    photos = services(router).photos
    image = photos.get(caller(router), photo_id)
    return PhotoDetail(**_photo(image).model_dump(), capture=photos.capture(image))


@router.get(
    "/photos/<photo_id>/url",
    security=TOKEN,
    summary="A URL to read the photo (a draft's for minutes, a published one's for a day)",
    tags=["photos"],
    responses=answers(PhotoUrl),
)
def photo_url(
    photo_id: Annotated[PhotoId, Path()],
    # The bound of a draft's or a published photo's URL, whichever is longer; the
    # service applies the photo's own.
    expires_in: Annotated[
        int | None,
        Query(ge=1, le=max(settings.url_expiry_seconds, settings.published_url_expiry_seconds)),
    ] = None,
) -> PhotoUrl:
    answer = services(router).photos.url(caller(router), photo_id, expires_in=expires_in)
    return PhotoUrl(id=answer.image.id, url=answer.url, expires_at=answer.expires_at)


@router.get(
    "/photos/<photo_id>/image",
    security=TOKEN,
    summary="The photo at a size: a redirect to a signed URL of that variant, rendered and "
    "stored on its first request",
    description="`w` (and `h`) from the configured widths; `fit=cover` fills the box, "
    "cropped to its centre (a square without `h`); `format=auto` takes AVIF, WebP or JPEG "
    "by the `Accept` header. `redirect=false` answers the URL as JSON instead, for a "
    "client that cannot send its token with an `<img>` request.",
    tags=["photos"],
    responses={
        302: {"description": "To the variant's signed URL (the Location header)"},
        **answers(VariantAnswer),
    },
)
def photo_image(
    photo_id: Annotated[PhotoId, Path()],
    w: Annotated[int, Query(ge=1, le=4096, description="Width: one of the configured widths")],
    h: Annotated[int | None, Query(ge=1, le=4096)] = None,
    fit: Annotated[Literal["contain", "cover"], Query()] = "contain",
    format: Annotated[Literal["auto", "jpeg", "webp", "avif"], Query()] = "auto",
    redirect: Annotated[bool, Query()] = True,
) -> Response[str]:
    event = router.current_event
    answer = services(router).variants.image(
        caller(router),
        photo_id,
        width=w,
        height=h,
        fit=fit,
        format=format,
        accept=event.headers.get("accept"),
    )
    # ``auto`` differs by Accept; a browser may keep the answer while the URL lasts.
    lasts = (
        int((answer.expires_at - services(router).photos.clock()).total_seconds() // 2)
        if answer.expires_at is not None
        else 3600
    )
    headers = {"Vary": "Accept", "Cache-Control": f"private, max-age={max(0, lasts)}"}
    if redirect:
        return Response(HTTPStatus.FOUND, None, "", {**headers, "Location": answer.url})
    body = VariantAnswer(
        id=photo_id,
        name=answer.spec.name,
        format=answer.spec.format,
        content_type=answer.spec.mime_type,
        bytes=answer.variant.size,
        url=answer.url,
        expires_at=answer.expires_at,
        rendered=answer.rendered,
    )
    return Response(HTTPStatus.OK, "application/json", body.model_dump_json(), headers)


@router.delete(
    "/photos/<photo_id>",
    security=TOKEN,
    summary="Delete a photo (its object follows through the cleanup function)",
    tags=["photos"],
    responses=answers(Photo),
)
def delete_photo(photo_id: Annotated[PhotoId, Path()]) -> Photo:
    return _photo(services(router).photos.delete(caller(router), photo_id))


@router.post(
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
    result = services(router).photos.publish(caller(router), draft_id, request.photo_ids)
    if result.to_serve:
        try:
            services(router).operations.serve(result.to_serve)
        except ShelflifeError as e:
            # Published all the same: the daily sweep moves what this could not ask for.
            logger.warning("serving %d published photos not started: %s", len(result.to_serve), e)
    return PublishResponse(
        draft_id=draft_id,
        updated=result.updated,
        failed=[PublishFailure(id=key, reason=value) for key, value in result.failed.items()],
    )


@router.get(
    "/users/me/usage",
    security=TOKEN,
    summary="The caller's photos and bytes by tier, and quota",
    tags=["photos"],
    responses=answers(UsageResponse),
)
def my_usage() -> UsageResponse:
    usage = services(router).photos.usage(caller(router))
    return UsageResponse(
        user_id=usage.user_id,
        tiers={tier: TierUsage(**asdict(value)) for tier, value in usage.tiers.items()},
        photos=usage.photos,
        bytes=usage.bytes,
        variants=usage.variants,
        variant_bytes=usage.variant_bytes,
        quota_bytes=usage.quota_bytes,
        remaining_bytes=usage.remaining_bytes,
    )
