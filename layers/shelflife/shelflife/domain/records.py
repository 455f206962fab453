"""What the table stores, as the rest of the package sees it.

These are plain validated values, independent of DynamoDB: the repositories translate
them to and from pynamodb models (``table.models``) or keep them in memory.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shelflife.domain.settings import BackendName, TierName


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must carry a time zone (UTC)")
    return value


Timestamp = Annotated[datetime, AfterValidator(_aware)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageState(StrEnum):
    # Placement claimed by ingest: the location is chosen, the object may not be written
    # yet, nothing is counted. Ingest resumes it on redelivery; not shown as a photo.
    PENDING = "pending"
    ACTIVE = "active"  # live: its object exists at its location and counts in its bucket
    REJECTED = "rejected"  # the upload was refused; the original waits in quarantine
    DELETED = "deleted"  # soft-deleted: cleanup removes the object, the TTL the record
    LOST = "lost"  # the reconciler found no object; kept for a human to decide


class ImageAction(StrEnum):
    PROMOTE = "promote"  # TEMP -> HOT
    ARCHIVE = "archive"  # HOT -> COLD
    RESTORE = "restore"  # COLD -> HOT
    # A published photo to HOT's serving buckets (``Settings.serve``: R2, whose egress is
    # free) when its views pay for the move.
    SERVE = "serve"
    DELETE = "delete"


class Location(_Record):
    tier: TierName
    backend: BackendName
    bucket: str
    key: str


IMAGES_PREFIX = "images/"
# A placement's token: 32 hex digits of a random UUID, before the extension.
_PLACEMENT_TOKEN = re.compile(r"-[0-9a-f]{32}$")


def placement_key(image_id: str, stored_sha256: str, extension: str) -> str:
    """The key of a new object of ``image_id``: content-addressed (the image and the
    SHA-256 of its stored bytes) and unique to this placement.

    No key is ever used by two placements (docs/RELIABILITY.md, "Keys are never
    reused"): a key a record let go of can be deleted late (cleanup acting on an old
    stream record, the reconciler between its re-check and its delete) without ever
    hitting an object a later placement wrote, because no later placement writes there.
    """
    return f"{IMAGES_PREFIX}{image_id}/{stored_sha256}-{uuid.uuid4().hex}.{extension}"


def replacement_key(key: str) -> str:
    """A new placement of the object at ``key`` (a move): the same image, content and
    extension under a fresh token, never ``key`` itself."""
    folder, _, name = key.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = _PLACEMENT_TOKEN.sub("", stem)
    fresh = f"{stem}-{uuid.uuid4().hex}" + (f".{extension}" if extension else "")
    return f"{folder}/{fresh}" if folder else fresh


VARIANTS_PREFIX = "variants/"


def variant_key(image_id: str, name: str, token: str | None = None) -> str:
    """The key of variant ``name`` (``domain.variants``) of ``image_id``: with a new
    token (None), unique to this rendering like ``placement_key``, so a key a record
    let go of is never written again; the table keeps the token only."""
    stem, _, extension = name.rpartition(".")
    return f"{VARIANTS_PREFIX}{image_id}/{stem}-{token or uuid.uuid4().hex}.{extension}"


def variant_token(key: str) -> str:
    """``variant_key``'s token, read back from the key."""
    return key.rpartition("-")[2].partition(".")[0]


class Variant(_Record):
    """A sized rendering of the photo (``domain.variants``), stored on the HOT tier
    beside it: derived, re-renderable, deleted with the photo (``referenced``)."""

    name: str = Field(min_length=1, max_length=64)
    location: Location
    size: int = Field(ge=0)


class ChangeAction(StrEnum):
    """What a write did to an image, as its audit trail says it (``domain.audit``)."""

    STORED = "stored"  # an upload's image is live at its placement
    QUARANTINED = "quarantined"  # an upload was refused; the original is in quarantine
    DEDUPLICATED = "deduplicated"  # the same bytes uploaded again: no new image
    MOVED = "moved"  # to another bucket or tier (the reason says which step)
    PUBLISHED = "published"
    ARCHIVE_SKIPPED = "archive_skipped"  # kept in HOT: archiving would not pay
    DELETED = "deleted"
    RESTORED = "restored"  # live again after it was lost
    MARKED_LOST = "marked_lost"
    ADOPTED = "adopted"  # an orphaned object the reconciler recorded
    IMPORTED = "imported"


class Change(_Record):
    """Who made the write that last changed an image in a way its audit trail records,
    and why: stamped on the record by the repository (``Repository.replace_image``) on
    that write only, so the table's stream carries it to the audit function."""

    action: ChangeAction
    actor: str = Field(min_length=1, max_length=200)
    at: Timestamp
    reason: str | None = Field(default=None, max_length=500)


class ImageRecord(_Record):
    id: str = Field(min_length=1, max_length=128)
    owner: str = Field(min_length=1, max_length=128)
    draft_id: str | None = None
    state: ImageState = ImageState.ACTIVE
    location: Location | None = None
    original_size: int = Field(default=0, ge=0)
    stored_size: int = Field(default=0, ge=0)
    original_sha256: Sha256Hex | None = None
    stored_sha256: Sha256Hex | None = None
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)
    format: str | None = None
    uploaded_at: Timestamp
    last_accessed_at: Timestamp | None = None
    access_count: int = Field(default=0, ge=0)
    published_at: Timestamp | None = None
    # When the object arrived at ``location``, and ``access_count`` then: the COLD
    # retention and the restore-on-access rule count from here (None: at upload).
    placed_at: Timestamp | None = None
    placed_access_count: int = Field(default=0, ge=0)
    # A move in flight: the destination claimed before the copy, so a sweep that
    # crashed resumes to the same place instead of leaving a second copy elsewhere.
    move_to: Location | None = None
    # The lifecycle found archiving not worth its one-time cost: the image stays in HOT
    # and is deleted when it would have left COLD.
    archive_skipped_at: Timestamp | None = None
    # Promoted to HOT where it lies: TEMP and HOT store on the same offer, so a copy
    # would buy nothing. The object stays in its TEMP bucket (``location`` is where the
    # bytes are, for every reader of buckets: counters, the reconciler, cleanup); the
    # policy and the photo's JSON treat it as HOT (``tier``).
    promoted_at: Timestamp | None = None
    next_action: ImageAction | None = None
    due_at: Timestamp | None = None
    rejection_reason: str | None = None
    # Rejected uploads: the key of the original in the upload bucket's quarantine.
    quarantine_key: str | None = None
    # The upload (its key in the upload bucket) that made this image live: that upload
    # delivered again is not a duplicate (None for images from before it was kept).
    source_key: str | None = None
    # The file name its first upload gave (without the upload id), for people.
    filename: str | None = None
    # When its bytes were first uploaded again by its owner (a duplicate: nothing new
    # stored); set once, so a duplicate redelivered, or a tenth one, writes nothing.
    duplicated_at: Timestamp | None = None
    expires_at: Timestamp | None = None  # the table's TTL removes the record after this
    # The audited change the last write made (None: that write changed nothing the
    # audit trail records, such as a view or a schedule).
    change: Change | None = None
    # Sized renderings (``Variant``), all in one HOT bucket (``variants_bucket``): they
    # count in its counters while the photo is live and are released with it.
    variants: tuple[Variant, ...] = ()
    # Optimistic lock: the repository refuses a write based on a stale read.
    version: int | None = None

    @property
    def tier(self) -> TierName | None:
        """The tier the policy applies: where the image lies, or HOT for one promoted
        in place."""
        if self.location is None:
            return None
        if self.location.tier is TierName.TEMP and self.promoted_at is not None:
            return TierName.HOT
        return self.location.tier

    @property
    def live(self) -> bool:
        """Counts in its bucket's usage (invariant 4 sums exactly these)."""
        return self.state is ImageState.ACTIVE and self.location is not None

    @property
    def variants_bucket(self) -> Location | None:
        """Where the variants are (their first one's place: they share its bucket)."""
        return self.variants[0].location if self.variants else None

    def held(self) -> list[tuple[Location, int]]:
        """The objects a live record counts in its buckets' counters, with their sizes:
        its image and its variants (none for a record that is not live)."""
        if not self.live or self.location is None:
            return []
        return [(self.location, self.stored_size), *((v.location, v.size) for v in self.variants)]

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def referenced(self) -> frozenset[Location]:
        """The objects this record keeps: its location (a pending claim's may exist
        already; a lost one is left for a human), a move's claimed destination and its
        variants. An object the old record of a change referenced and the new one does
        not is the cleanup function's to delete (``released_objects``): a variant
        never outlives its photo."""
        if self.state in (ImageState.DELETED, ImageState.REJECTED):
            return frozenset()
        places = (self.location, self.move_to, *(v.location for v in self.variants))
        return frozenset(place for place in places if place is not None)


class BucketStatus(StrEnum):
    ACTIVE = "active"  # accepts new objects
    FULL = "full"  # past the overflow threshold; reads and deletes only
    DRAINING = "draining"  # being emptied, accepts nothing new
    # The provider says the bucket is gone (a put failed with NoSuchBucket): nothing is
    # placed there; the reconciler reports the records that still point to it.
    MISSING = "missing"


class BucketRecord(_Record):
    tier: TierName
    backend: BackendName
    name: str
    capacity_bytes: int = Field(gt=0)
    used_bytes: int = 0
    object_count: int = 0
    status: BucketStatus = BucketStatus.ACTIVE
    created_at: Timestamp

    @property
    def used_fraction(self) -> float:
        return self.used_bytes / self.capacity_bytes


class RunKind(StrEnum):
    LIFECYCLE = "lifecycle"
    CAPACITY = "capacity"
    RECONCILE = "reconcile"
    # A pricing of the deployment's measured workload by ``shelflife recommend`` (the
    # simulator runs where the operator runs it; the dashboard draws the last one).
    PRICING = "pricing"
    # ``shelflife import``: a bucket of existing photos brought in, resumable.
    IMPORT = "import"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def new_run_id(started_at: datetime) -> str:
    """A run's id: when it started, readable, and unique among runs started together."""
    return f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class RunRecord(_Record):
    kind: RunKind
    id: str = Field(min_length=1)
    started_at: Timestamp
    finished_at: Timestamp | None = None
    status: RunStatus = RunStatus.RUNNING
    dry_run: bool = False
    counts: dict[str, int] = Field(default_factory=dict)
    # Where a run that stopped before its time budget ran out continues.
    cursor: str | None = None
    # What a run keeps beyond counts to be resumed or shown (a reconcile run's options
    # and the drift it found); JSON, kept small (DynamoDB items stop at 400 KB).
    details: dict[str, Any] | None = None
    expires_at: Timestamp | None = None  # the table's TTL removes the record after this


class UploadState(StrEnum):
    STORED = "stored"  # became photo ``photo_id``
    DUPLICATE = "duplicate"  # the owner's photo ``photo_id`` already had these bytes
    REJECTED = "rejected"  # quarantined, ``reason`` says why (record ``photo_id``)


class UploadOutcome(_Record):
    """What ingest made of one upload, for ``GET /uploads/{id}``: written just before
    the upload is deleted (a redelivery writes the same), kept a week by the TTL."""

    upload_id: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    state: UploadState
    photo_id: str
    filename: str
    reason: str | None = None
    at: Timestamp
    expires_at: Timestamp | None = None


class CleanupStatus(StrEnum):
    # A cleanup failed at least once; the stream delivers it again (pending).
    RETRYING = "retrying"
    # Out of attempts: the change waits in the cleanup dead-letter queue for a redrive.
    FAILED = "failed"
    # Done after one or more failures (by a later delivery or a redrive).
    COMPLETED = "completed"


class CleanupTask(_Record):
    """What the cleanup function remembers of a stream record it could not finish at the
    first try: one per stream record (``event_id``), for retries, the dead-letter queue
    and the health report. A cleanup that succeeds at once leaves no task."""

    event_id: str = Field(min_length=1)
    image_id: str = Field(min_length=1)
    status: CleanupStatus
    attempts: int = Field(ge=1)
    error: str
    first_failed_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp | None = None  # the table's TTL removes the record after this


# What the table counts per day, for the API's activity metrics (lifecycle runs keep
# their own counts in their run records).
# Publishes by the photo's age then (``shelflife.domain.tuning``): "published_within_<b>d"
# counts photos at most b days old (older than the bound before), the last the rest.
PUBLISH_AGE_BOUNDS = (1, 2, 3, 5, 7, 10, 14, 21, 30, 60, 90)
PUBLISH_AGE_COUNTERS = (
    *(f"published_within_{bound}d" for bound in PUBLISH_AGE_BOUNDS),
    f"published_after_{PUBLISH_AGE_BOUNDS[-1]}d",
)
DAILY_COUNTERS = (
    "uploaded",
    "duplicates",
    "rejected",
    "deleted_by_owner",
    "published",
    # A published photo's URL asked for through the API (a client keeps a URL for the
    # day, so these are view-days): what serving it costs depends on them.
    "published_views",
    # The stored bytes of the photos published (with "published": their mean size).
    "published_bytes",
    *PUBLISH_AGE_COUNTERS,
    # Photos brought in by ``shelflife import``: stored like uploads, counted apart so
    # a one-time import is not priced as the deployment's daily upload rate.
    "imported",
)


class DailyCounts(_Record):
    day: date
    counts: dict[str, int] = Field(default_factory=dict)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    # Opaque; pass it back to get the next page. None after the last page.
    cursor: str | None = None


@dataclass(frozen=True)
class StreamChange:
    """One change of one record, as the table's stream shows it: the image records
    before and after (None for no image, or an item that is not an image record), and
    the record as delivered, kept for the dead-letter queue. The table adapter reads
    them (``table.dynamo.stream_change``); cleanup acts on them."""

    event_id: str
    old: ImageRecord | None
    new: ImageRecord | None
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def image_id(self) -> str:
        image = self.old or self.new
        return image.id if image is not None else "-"


def released_objects(old: ImageRecord | None, new: ImageRecord | None) -> frozenset[Location]:
    """What a change of one record (as the table's stream shows it) lets go of: moved
    away from, soft-deleted, removed, or a move's destination given up."""
    kept = new.referenced() if new is not None else frozenset()
    return (old.referenced() if old is not None else frozenset()) - kept


def due_shard(image_id: str, shards: int) -> int:
    """The shard of the due index an image's schedule is written to. Spreading due
    records over a few partitions keeps a large sweep from reading one hot partition."""
    return int.from_bytes(hashlib.sha256(image_id.encode()).digest()[:4], "big") % shards
