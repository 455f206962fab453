"""What a user does with their photos through the API: upload (a presigned POST
straight to the upload bucket), list, read, get a URL, delete, publish a draft, and see
their usage.

Every operation takes the ``Caller`` and checks ownership: another user's photo is
``RecordNotFound``, exactly like a photo that does not exist, so ids reveal nothing.
Writes go through the policy (``accessed``, ``published``, ``soft_deleted``) so the
schedule stored with the record is the one the lifecycle applies.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shelflife.domain.audit import acting, user_actor
from shelflife.domain.auth import Caller
from shelflife.domain.capture import Capture, label_metadata
from shelflife.domain.clock import utc_now
from shelflife.domain.errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    RecordNotFound,
    ShelflifeError,
    TooLarge,
)
from shelflife.domain.policy import accessed, published, soft_deleted, tier_at
from shelflife.domain.records import ImageAction, ImageRecord, ImageState, Location, Page
from shelflife.domain.repository import Repository
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.storage import Backends, PresignedPost, UploadBucket
from shelflife.domain.tuning import DailyTuned, publish_age_counter
from shelflife.domain.uploads import (
    DRAFT_METADATA_KEY,
    INCOMING_PREFIX,
    PLAIN_ID,
    is_upload_id,
    new_upload_id,
    upload_issued_at,
)

logger = logging.getLogger(__name__)
# What a browser may declare for each format ingest accepts (shelflife.domain.imaging sniffs
# the bytes anyway: a wrong type is rejected there, with the original quarantined).
CONTENT_TYPES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/avif": "AVIF",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    "image/gif": "GIF",
    "image/tiff": "TIFF",
}
FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,199}$")
# Shown to their owner: pending claims are ingest's business, deleted ones are gone.
VISIBLE = frozenset({ImageState.ACTIVE, ImageState.REJECTED, ImageState.LOST})
# Races on one record (an access and a sweep at once) are retried this many times.
_ATTEMPTS = 3


@dataclass(frozen=True)
class UploadTicket:
    upload_id: str
    key: str
    form: PresignedPost
    max_bytes: int
    expires_at: datetime


@dataclass(frozen=True)
class UploadStatus:
    """``GET /uploads/{id}``: ``pending`` (no outcome yet: not uploaded, or not
    processed yet), ``expired`` (none long after the ticket ran out: never uploaded),
    or what ingest made of it (``records.UploadState``)."""

    upload_id: str
    state: str
    photo_id: str | None = None
    filename: str | None = None
    reason: str | None = None
    at: datetime | None = None


# Ingest may finish an upload this long after its ticket ran out (Lambda retries an
# asynchronous invocation for up to six hours).
_INGEST_GRACE = timedelta(hours=6)


@dataclass(frozen=True)
class PhotoUrl:
    url: str
    expires_at: datetime | None  # None for a CDN URL
    image: ImageRecord


@dataclass
class PublishResult:
    updated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # id -> reason
    # Published now and due to move to the serving buckets at once: the API asks the
    # lifecycle to do it (the daily sweep does it if that request is lost).
    to_serve: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TierUsage:
    photos: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Usage:
    user_id: str
    tiers: dict[str, TierUsage]
    photos: int
    bytes: int
    quota_bytes: int | None
    # Sized variants (``services.variants``): derived, on HOT, not in the quota.
    variants: int = 0
    variant_bytes: int = 0

    @property
    def remaining_bytes(self) -> int | None:
        return None if self.quota_bytes is None else max(0, self.quota_bytes - self.bytes)


@dataclass(frozen=True)
class ExportFilter:
    """Which records an export holds: an administrator's may name an owner; every
    other filter is anyone's. Times are of the upload, ``since`` included, ``until``
    not."""

    owner: str | None = None
    tier: TierName | None = None
    state: ImageState | None = None
    since: datetime | None = None
    until: datetime | None = None

    def keeps(self, image: ImageRecord, tier: TierName | None) -> bool:
        return (
            (self.tier is None or tier is self.tier)
            and (self.state is None or image.state is self.state)
            and (self.since is None or image.uploaded_at >= self.since)
            and (self.until is None or image.uploaded_at < self.until)
        )


@dataclass(frozen=True)
class ExportRow:
    image: ImageRecord
    tier: TierName | None
    # A fresh URL to read it (signed, or on the CDN); None when it has no stored image.
    url: str | None
    url_expires_at: datetime | None


class PhotoService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        backends: Backends,
        *,
        uploads: UploadBucket | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.repository = repository
        self.backends = backends
        self._uploads = uploads
        self.clock = clock
        self._tuned = DailyTuned(settings, repository, clock)

    @property
    def configured(self) -> Settings:
        return self._tuned.configured

    @property
    def settings(self) -> Settings:
        """The deployment's settings as the lifecycle applies them: tuned from the daily
        counters (``shelflife.domain.tuning``), read once a day per container, so the
        schedule a view or a publish stores is the one the sweep would store."""
        return self._tuned.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._tuned = DailyTuned(settings, self.repository, self.clock)

    @property
    def uploads(self) -> UploadBucket:
        """The upload bucket's backend: always S3 (the stack's own bucket)."""
        if self._uploads is None:
            backend = self.backends.get("s3")
            if not isinstance(backend, UploadBucket):
                raise InvalidArgument("the upload bucket needs the s3 backend")
            self._uploads = backend
        return self._uploads

    # ---- uploads -------------------------------------------------------------------

    def create_upload(
        self,
        caller: Caller,
        *,
        filename: str,
        content_type: str,
        size: int | None = None,
        draft_id: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> UploadTicket:
        """A presigned POST for one upload under the caller's prefix. Refused when the
        declared size is over the limit, the format is not accepted, or the caller's
        quota has no room left (``Forbidden``, code ``quota_exceeded``)."""
        if self.settings.upload_bucket is None:
            raise InvalidArgument("no upload bucket is configured (SHELFLIFE_UPLOAD_BUCKET)")
        if not FILENAME.match(filename):
            raise InvalidArgument(
                f"filename {filename!r} must be 1-200 letters, digits, spaces or ._()+- "
                "(starting with a letter or digit, no folders)"
            )
        if draft_id is not None and not PLAIN_ID.match(draft_id):
            raise InvalidArgument(
                f"draft_id {draft_id!r} must be 1-128 letters, digits or ._@+- "
                "(starting with a letter or digit)"
            )
        kind = CONTENT_TYPES.get(content_type.lower())
        if kind is None or kind not in self.settings.allowed_formats:
            accepted = sorted(
                name for name, fmt in CONTENT_TYPES.items() if fmt in self.settings.allowed_formats
            )
            raise InvalidArgument(
                f"content type {content_type!r} is not accepted; accepted: {', '.join(accepted)}"
            )
        metadata = label_metadata(labels or {})
        if draft_id:
            metadata[DRAFT_METADATA_KEY] = draft_id
        max_bytes = self.settings.max_upload_bytes
        if size is not None and size > max_bytes:
            raise TooLarge(f"{size} bytes is over the {max_bytes}-byte upload limit")
        if self.settings.user_quota_bytes is not None:
            usage = self.usage(caller)
            room = usage.remaining_bytes or 0
            if room <= 0 or (size is not None and size > room):
                raise Forbidden(
                    f"upload refused: {usage.bytes} of your {usage.quota_bytes}-byte quota "
                    f"is used ({room} bytes left)",
                    code="quota_exceeded",
                )
            max_bytes = min(max_bytes, room)
        upload_id = new_upload_id(self.clock())
        folder = f"{caller.user_id}/{draft_id}" if draft_id else caller.user_id
        key = f"{INCOMING_PREFIX}{folder}/{upload_id}-{filename}"
        expires_in = self.settings.upload_expiry_seconds
        form = self.uploads.presigned_post(
            self.settings.upload_bucket,
            key,
            max_bytes=max_bytes,
            content_type=content_type.lower(),
            metadata=metadata or None,
            expires_in=expires_in,
        )
        return UploadTicket(
            upload_id=upload_id,
            key=key,
            form=form,
            max_bytes=max_bytes,
            expires_at=self.clock() + timedelta(seconds=expires_in),
        )

    def upload_status(self, caller: Caller, upload_id: str) -> UploadStatus:
        """What became of the caller's upload ``upload_id``; another user's is as
        unknown as one never made (``RecordNotFound``)."""
        if not is_upload_id(upload_id):
            raise InvalidArgument(f"{upload_id!r} is not an upload id (32 digits and a-f)")
        outcome = self.repository.find_upload_outcome(upload_id)
        if outcome is not None:
            if outcome.owner != caller.user_id:
                raise RecordNotFound(f"no upload {upload_id}")
            return UploadStatus(
                upload_id=upload_id,
                state=outcome.state.value,
                photo_id=outcome.photo_id,
                filename=outcome.filename,
                reason=outcome.reason,
                at=outcome.at,
            )
        issued = upload_issued_at(upload_id)
        lifetime = timedelta(seconds=self.settings.upload_expiry_seconds) + _INGEST_GRACE
        if issued is not None and self.clock() > issued + lifetime:
            reason = "no upload arrived for this ticket before it expired"
            return UploadStatus(upload_id=upload_id, state="expired", reason=reason)
        return UploadStatus(upload_id=upload_id, state="pending")

    # ---- photos --------------------------------------------------------------------

    def list_photos(
        self, caller: Caller, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ImageRecord]:
        """The caller's photos, newest first; a page may hold fewer than ``limit``
        (records being ingested or deleted are not photos)."""
        page = self.repository.images_by_owner(caller.user_id, limit=limit, cursor=cursor)
        return Page(items=[i for i in page.items if i.state in VISIBLE], cursor=page.cursor)

    def export(
        self,
        caller: Caller,
        which: ExportFilter,
        *,
        limit: int = 500,
        cursor: str | None = None,
    ) -> Page[ExportRow]:
        """One page of an export: the caller's photos (an administrator's: everyone's,
        or one owner's), each with a fresh URL. A page reads at most ``limit`` records
        and may keep fewer (the filters); the cursor goes on. Signing a URL is not an
        access: no record is written (an export is a listing, not a view)."""
        owner = which.owner
        if owner is not None and owner != caller.user_id:
            caller.require_admin()
        if owner is None and not caller.admin:
            owner = caller.user_id
        if owner is None:
            page = self.repository.all_images(limit=limit, cursor=cursor)
            images = page.items
        else:
            page = self.repository.images_by_owner(owner, limit=limit, cursor=cursor)
            images = [i for i in page.items if caller.admin or i.state in VISIBLE]
        rows = []
        for image in images:
            tier = self.tier_of(image)
            if which.keeps(image, tier):
                rows.append(self._export_row(image, tier))
        return Page(items=rows, cursor=page.cursor)

    def _export_row(self, image: ImageRecord, tier: TierName | None) -> ExportRow:
        place = image.location
        if image.state is not ImageState.ACTIVE or place is None:
            return ExportRow(image, tier, None, None)
        url, expires_at = self._read_url(place, self._url_expiry_limit(image))
        return ExportRow(image, tier, url, expires_at)

    def capture(self, image: ImageRecord) -> Capture | None:
        """The photo's capture facts and labels (``domain.capture``), read beside it."""
        return self.repository.find_capture(image.id)

    def get(self, caller: Caller, image_id: str) -> ImageRecord:
        image = self.repository.find_image(image_id)
        if image is None or image.owner != caller.user_id or image.state not in VISIBLE:
            raise RecordNotFound(f"no photo {image_id!r}")
        return image

    def url(self, caller: Caller, image_id: str, *, expires_in: int | None = None) -> PhotoUrl:
        """A URL to read the photo (signed, or on the CDN), recording the access: the
        HOT clock starts again and a COLD photo may come back to HOT. A published
        photo's access is counted in the day's views, not on its record
        (``policy.accessed``)."""
        current = self.get(caller, image_id)
        if current.state is not ImageState.ACTIVE or current.location is None:
            raise Conflict(f"photo {image_id!r} is {current.state.value}: it has no stored image")
        limit = self._url_expiry_limit(current)
        expires_in = limit if expires_in is None else expires_in
        if not 1 <= expires_in <= limit:
            raise InvalidArgument(
                f"expires_in must be between 1 and {limit} seconds for this photo"
            )
        image = self.record_access(caller, image_id, read=current)
        place = image.location
        if image.state is not ImageState.ACTIVE or place is None:  # changed meanwhile
            raise Conflict(f"photo {image_id!r} is {image.state.value}: it has no stored image")
        if image.published_at is not None:
            # What serving published photos costs depends on how often they are asked
            # for (shelflife recommend).
            self._count("published_views")
        url, expires_at = self._read_url(place, expires_in)
        return PhotoUrl(url, expires_at, image)

    def record_access(
        self, caller: Caller, image_id: str, *, read: ImageRecord | None = None
    ) -> ImageRecord:
        """The photo looked at now (``policy.accessed``): the HOT clock starts again and
        a COLD photo may become due for a restore; a published one is unchanged.
        ``read``: the photo as the caller just read it (one read fewer)."""
        return self._update(
            caller, image_id, lambda image, now: accessed(image, now, self.settings), read=read
        )

    def signed_url(self, image: ImageRecord, place: Location) -> tuple[str, datetime | None]:
        """A URL to read the object at ``place`` (the photo's, or one derived from it),
        lasting as long as ``image``'s URLs may."""
        return self._read_url(place, self._url_expiry_limit(image))

    def _read_url(self, place: Location, expires_in: int) -> tuple[str, datetime | None]:
        """A URL to read the object at ``place``, and when it expires: the CDN's (no
        expiry), or signed by the provider the bytes are on (the location says; not
        the tier's)."""
        if self.settings.cdn_base_url:
            return f"{self.settings.cdn_base_url}/{place.key}", None
        backend = self.backends.get(place.backend.value)
        url = backend.presigned_get_url(place.bucket, place.key, expires_in=expires_in)
        return url, self.clock() + timedelta(seconds=expires_in)

    def _url_expiry_limit(self, image: ImageRecord) -> int:
        """How long ``image``'s URL may last: a day (by default) once it is published,
        the short limit while it is a draft."""
        if image.published_at is not None:
            return self.settings.published_url_expiry_seconds
        return self.settings.url_expiry_seconds

    def delete(self, caller: Caller, image_id: str) -> ImageRecord:
        """Soft delete: the record stops counting at once and the cleanup function
        deletes the object when the stream shows the change. Deleting again answers
        the deleted record."""
        for attempt in range(1, _ATTEMPTS + 1):
            image = self.repository.find_image(image_id)
            if image is None or image.owner != caller.user_id:
                raise RecordNotFound(f"no photo {image_id!r}")
            if image.state is ImageState.DELETED:
                return image
            if image.state is ImageState.PENDING:
                raise Conflict(f"photo {image_id!r} is still being processed; try again soon")
            try:
                with acting(user_actor(caller.user_id), reason="by its owner", clock=self.clock):
                    deleted = self.repository.replace_image(
                        image, soft_deleted(image, self.clock(), self.settings)
                    )
            except Conflict:
                if attempt == _ATTEMPTS:
                    raise
                continue
            self._count("deleted_by_owner")
            return deleted
        raise AssertionError("unreachable")

    def publish(self, caller: Caller, draft_id: str, image_ids: Iterable[str]) -> PublishResult:
        """Publish the photos of a draft: each is deleted ``published_retention_days``
        later. Photos already published keep their first publishing time."""
        result = PublishResult()
        ages: Counter[str] = Counter()
        settings = self.settings
        ids = list(dict.fromkeys(image_ids))
        found = self.repository.find_images(ids)
        for image_id in ids:
            image = found.get(image_id)
            if image is None or image.owner != caller.user_id or image.state not in VISIBLE:
                result.failed[image_id] = "not found"
            elif image.draft_id != draft_id:
                result.failed[image_id] = f"not a photo of draft {draft_id!r}"
            elif image.state is not ImageState.ACTIVE:
                result.failed[image_id] = f"photo is {image.state.value}"
            elif image.published_at is not None:
                result.updated.append(image_id)
            else:
                try:
                    now_published = self._update(
                        caller,
                        image_id,
                        lambda image, now: (
                            image
                            if image.published_at is not None
                            else published(image, now, settings)
                        ),
                        read=image,
                    )
                except ShelflifeError as e:
                    result.failed[image_id] = str(e)
                    continue
                result.updated.append(image_id)
                if now_published.next_action is ImageAction.SERVE:
                    result.to_serve.append(image_id)
                # What the lifecycle learns when drafts are known (domain.tuning).
                ages[publish_age_counter(self.clock() - image.uploaded_at)] += 1
                ages["published_bytes"] += image.stored_size
        if result.updated:
            self._count({"published": len(result.updated), **ages})
        return result

    def tier_of(self, image: ImageRecord) -> TierName | None:
        """The tier the photo is in now (``policy.tier_at``)."""
        return tier_at(image, self.clock(), self.settings)

    def usage(self, caller: Caller) -> Usage:
        """The caller's live photos and stored bytes, by tier (a read of all their
        records through the owner index)."""
        photos: Counter[str] = Counter()
        stored: Counter[str] = Counter()
        cursor: str | None = None
        variants = variant_bytes = 0
        now = self.clock()
        while True:
            page = self.repository.images_by_owner(caller.user_id, limit=1000, cursor=cursor)
            for image in page.items:
                if image.live and image.location is not None:
                    tier = tier_at(image, now, self.settings) or image.location.tier
                    photos[tier.value] += 1
                    stored[tier.value] += image.stored_size
                    variants += len(image.variants)
                    variant_bytes += sum(variant.size for variant in image.variants)
            if page.cursor is None:
                break
            cursor = page.cursor
        return Usage(
            user_id=caller.user_id,
            tiers={
                tier.value: TierUsage(photos=photos[tier.value], bytes=stored[tier.value])
                for tier in TierName
            },
            photos=sum(photos.values()),
            bytes=sum(stored.values()),
            quota_bytes=self.settings.user_quota_bytes,
            variants=variants,
            variant_bytes=variant_bytes,
        )

    # ---- helpers -------------------------------------------------------------------

    def _update(
        self,
        caller: Caller,
        image_id: str,
        change: Callable[[ImageRecord, datetime], ImageRecord],
        *,
        read: ImageRecord | None = None,
    ) -> ImageRecord:
        """Apply ``change`` to the caller's photo (``read``: as the caller just read it,
        which the first attempt uses instead of reading it again), reading again when
        a concurrent write (a sweep, another request) got there first."""
        for attempt in range(1, _ATTEMPTS + 1):
            image = read if attempt == 1 and read is not None else self.get(caller, image_id)
            updated = change(image, self.clock())
            if updated == image:
                return image
            try:
                with acting(user_actor(caller.user_id), clock=self.clock):
                    return self.repository.replace_image(image, updated)
            except Conflict:
                if attempt == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _count(self, counters: str | dict[str, int], value: int = 1) -> None:
        counts = {counters: value} if isinstance(counters, str) else counters
        try:
            self.repository.add_daily_counts(self.clock().date(), counts)
        except ShelflifeError as e:
            # Activity metrics only: the change itself is done.
            logger.warning("daily counts %s not added: %s", sorted(counts), e)
