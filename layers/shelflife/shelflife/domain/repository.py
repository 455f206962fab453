"""The repository: every read and write of the table goes through here.

Two implementations pass the same tests (tests/contract/test_repository.py):
``DynamoRepository`` (pynamodb, the real table) and ``MemoryRepository`` (a dict, for
unit tests of services). The shared rules live in this base class:

- an image write and the bucket counters it moves are one atomic change (invariant 4);
- a write based on a stale read is refused (optimistic lock on ``version``), so two
  handlers racing on one image cannot both win (invariant 5);
- every image written carries the change it makes and who made it (``audit.stamped``),
  which the table's stream turns into the image's audit trail.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from shelflife.domain.audit import stamped
from shelflife.domain.capture import Capture
from shelflife.domain.errors import Conflict, InvalidArgument, RecordNotFound
from shelflife.domain.records import (
    DAILY_COUNTERS,
    BucketRecord,
    BucketStatus,
    CleanupStatus,
    CleanupTask,
    DailyCounts,
    ImageRecord,
    Page,
    RunKind,
    RunRecord,
    UploadOutcome,
)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class CounterChange:
    tier: str
    bucket: str
    bytes: int
    objects: int


def counter_changes(
    previous: ImageRecord | None, updated: ImageRecord | None
) -> list[CounterChange]:
    """How replacing ``previous`` by ``updated`` moves the bucket counters: a live image
    counts its stored size and one object in the bucket it points to, and each of its
    variants its size and one object in theirs."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for image, sign in ((previous, -1), (updated, 1)):
        for place, size in image.held() if image is not None else ():
            entry = totals[(place.tier.value, place.bucket)]
            entry[0] += sign * size
            entry[1] += sign
    return [
        CounterChange(tier=tier, bucket=bucket, bytes=size, objects=count)
        for (tier, bucket), (size, count) in sorted(totals.items())
        if size or count
    ]


def roomy(used_bytes: int, object_count: int, change: CounterChange, limit: int) -> bool:
    """Whether a bucket holding ``used_bytes`` in ``object_count`` objects stays within
    ``limit`` after ``change`` (an empty bucket takes anything, as ``has_room`` says)."""
    return change.bytes <= 0 or object_count == 0 or used_bytes + change.bytes <= limit


def single_write(
    previous: ImageRecord | None, updated: ImageRecord | None, counts: DailyCounts | None
) -> bool:
    """Whether replacing ``previous`` by ``updated`` writes the image's item alone: no
    bucket counter moves and no day's count is added, so the write, conditional on the
    version read, is atomic by itself and needs no transaction (which would bill it
    twice)."""
    return counts is None and not counter_changes(previous, updated)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")


class Repository(ABC):
    def __init__(self, *, due_shards: int = 4) -> None:
        if due_shards < 1:
            raise InvalidArgument("due_shards must be at least 1")
        self.due_shards = due_shards

    # ---- images ------------------------------------------------------------------

    def add_image(self, image: ImageRecord, *, counts: DailyCounts | None = None) -> ImageRecord:
        """Record a new image and count it in its bucket (and add ``counts`` to that
        day's activity counters, in the same write). ``Conflict`` if the id exists (a
        redelivered event), in which case nothing changes."""
        if image.version is not None:
            raise InvalidArgument("a new image has no version yet")
        written = self._write_image(None, stamped(None, image), self._checked(counts), {})
        assert written is not None
        return written

    def replace_image(
        self,
        previous: ImageRecord,
        updated: ImageRecord,
        *,
        counts: DailyCounts | None = None,
        within: Mapping[str, int] | None = None,
    ) -> ImageRecord:
        """Replace ``previous`` (as read) by ``updated``; moves, state changes and
        soft deletes move the counters with it, and ``counts`` are added to that day's
        activity counters in the same write. ``Conflict`` if the record changed since
        ``previous`` was read (nothing is counted then). ``within`` maps a bucket's name
        to the most bytes it may hold after the write (unless it holds no object yet):
        ``NoRoom`` if a bucket this write adds bytes to would go past it (concurrent
        placements chose it on the same counters)."""
        self._check_pair(previous, updated)
        updated = stamped(previous, updated)
        written = self._write_image(previous, updated, self._checked(counts), within or {})
        assert written is not None
        return written

    def remove_image(self, previous: ImageRecord) -> None:
        """Delete the record (the stream then tells cleanup to delete the object)."""
        self._check_pair(previous, None)
        self._write_image(previous, None, None, {})

    def get_image(self, image_id: str) -> ImageRecord:
        image = self.find_image(image_id)
        if image is None:
            raise RecordNotFound(f"no image {image_id!r}")
        return image

    @abstractmethod
    def find_image(self, image_id: str) -> ImageRecord | None: ...

    def find_images(self, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        """The images of ``image_ids`` that exist, by id, read consistently (a batch
        where the table has one)."""
        found = {}
        for image_id in dict.fromkeys(image_ids):
            image = self.find_image(image_id)
            if image is not None:
                found[image_id] = image
        return found

    def images_by_owner(
        self, owner: str, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[ImageRecord]:
        """The owner's images, newest upload first."""
        _check_limit(limit)
        return self._images_by_owner(owner, limit=limit, cursor=cursor)

    def due_images(
        self,
        shard: int,
        now: datetime,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[ImageRecord]:
        """Images of one due-index shard whose next action is due at ``now``, earliest
        first. Only scheduled images are in the index, so nothing else is read."""
        _check_limit(limit)
        if not 0 <= shard < self.due_shards:
            raise InvalidArgument(f"shard must be in 0..{self.due_shards - 1}, got {shard}")
        return self._due_images(shard, now, limit=limit, cursor=cursor)

    def images_in_bucket(
        self,
        tier: str,
        bucket: str,
        *,
        uploaded_before: datetime | None = None,
        with_variants: bool = False,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[ImageRecord]:
        """Live images stored in one bucket (uploaded before ``uploaded_before``), in no
        particular order: a scan of the table, for rare reads (a capacity cleanup, the
        reconciler; there is no index by bucket, see ``adapters.table.models``). With
        ``with_variants``, also live images whose variants are there (the reconciler's
        view of what the bucket should hold). Pages hold distinct records and together
        all of them; a page may hold fewer than ``limit`` while a cursor follows."""
        _check_limit(limit)
        return self._images_in_bucket(
            tier,
            bucket,
            uploaded_before=uploaded_before,
            with_variants=with_variants,
            limit=limit,
            cursor=cursor,
        )

    def all_images(
        self, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page[ImageRecord]:
        """Every image record, in any state, in no particular order: a scan of the table,
        for an administrator's export. Pages as ``images_in_bucket``'s."""
        _check_limit(limit)
        return self._all_images(limit=limit, cursor=cursor)

    # ---- buckets -----------------------------------------------------------------

    @abstractmethod
    def add_bucket(self, bucket: BucketRecord) -> BucketRecord:
        """Record a bucket; ``Conflict`` if it is already recorded."""

    def get_bucket(self, tier: str, name: str) -> BucketRecord:
        for bucket in self.list_buckets(tier):
            if bucket.name == name:
                return bucket
        raise RecordNotFound(f"no bucket {name!r} in tier {tier!r}")

    @abstractmethod
    def list_buckets(self, tier: str | None = None) -> list[BucketRecord]:
        """Every bucket record (of one tier), in one query."""

    @abstractmethod
    def set_bucket_status(self, tier: str, name: str, status: BucketStatus) -> BucketRecord: ...

    @abstractmethod
    def set_bucket_counters(
        self,
        tier: str,
        name: str,
        *,
        used_bytes: int,
        object_count: int,
        expected: tuple[int, int] | None = None,
    ) -> BucketRecord:
        """Overwrite the counters: for the reconciler's repair of drift only. With
        ``expected`` (used bytes, object count), only if the counters still hold those
        values, else ``Conflict``: an image written meanwhile is not overwritten."""

    # ---- capture metadata ----------------------------------------------------------

    @abstractmethod
    def put_upload_outcome(self, outcome: UploadOutcome) -> None:
        """Keep what became of an upload (the same put again changes nothing)."""

    @abstractmethod
    def find_upload_outcome(self, upload_id: str) -> UploadOutcome | None: ...

    @abstractmethod
    def put_capture(self, image_id: str, capture: Capture) -> None:
        """Keep an image's capture facts (``domain.capture``): an item of their own
        beside the record, written once, so the record (written at every move) does
        not carry them. The same put again changes nothing."""

    @abstractmethod
    def find_capture(self, image_id: str) -> Capture | None: ...

    @abstractmethod
    def expire_capture(self, image_id: str, at: datetime) -> None:
        """The image is deleted: its capture facts go at ``at`` (the table's TTL, as
        its record's), so the cleanup function needs no right to delete items. None
        there is done."""

    @abstractmethod
    def keep_capture(self, image_id: str) -> None:
        """The image is live again (its owner uploaded the same bytes after deleting
        it): its capture facts stay, with no expiry. None there is done."""

    # ---- runs --------------------------------------------------------------------

    @abstractmethod
    def save_run(self, run: RunRecord) -> RunRecord: ...

    @abstractmethod
    def recent_runs(
        self, kind: RunKind, *, limit: int = 20, since: datetime | None = None
    ) -> list[RunRecord]:
        """The latest runs of one kind (started at or after ``since``), newest first."""

    @abstractmethod
    def find_run(self, kind: RunKind, started_at: datetime, run_id: str) -> RunRecord | None:
        """One run, by the start time and id its record is keyed on."""

    def run_by_id(self, kind: RunKind, run_id: str) -> RunRecord:
        """A run by its id alone (``records.new_run_id``: its start to the second, the
        record being keyed on it to the microsecond): ``InvalidArgument`` for what is
        no run id, ``RecordNotFound`` when there is no such run (its TTL is over)."""
        try:
            started = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidArgument(f"not a run id: {run_id!r}") from None
        for run in self.recent_runs(kind, since=started, limit=100):
            if run.id == run_id:
                return run
        raise RecordNotFound(f"no {kind.value} run {run_id!r}")

    # ---- cleanup tasks -------------------------------------------------------------

    @abstractmethod
    def save_cleanup_task(self, task: CleanupTask) -> CleanupTask:
        """Record or overwrite the task of one stream record."""

    @abstractmethod
    def find_cleanup_task(self, event_id: str) -> CleanupTask | None: ...

    @abstractmethod
    def cleanup_tasks(
        self, *, status: CleanupStatus | None = None, updated_since: datetime | None = None
    ) -> list[CleanupTask]:
        """Tasks (of one status, updated at or after ``updated_since``), the most
        recently updated first."""

    # ---- daily counts --------------------------------------------------------------

    def add_daily_counts(self, day: date, counts: Mapping[str, int]) -> None:
        """Add to the counters of ``day`` (names from ``DAILY_COUNTERS``), atomically."""
        checked = self._checked(DailyCounts(day=day, counts=dict(counts)))
        if checked is not None:
            self._add_daily_counts(checked.day, checked.counts)

    @staticmethod
    def _checked(counts: DailyCounts | None) -> DailyCounts | None:
        """``counts`` without its zeros (None if nothing is left); ``InvalidArgument``
        for a name that is not a daily counter."""
        if counts is None:
            return None
        unknown = sorted(set(counts.counts) - set(DAILY_COUNTERS))
        if unknown:
            raise InvalidArgument(
                f"unknown daily counters {unknown}; valid: {', '.join(DAILY_COUNTERS)}"
            )
        changes = {name: value for name, value in counts.counts.items() if value}
        return DailyCounts(day=counts.day, counts=changes) if changes else None

    @abstractmethod
    def daily_counts(self, since: date) -> list[DailyCounts]:
        """The counters of every day from ``since`` on that counted anything, oldest
        first; every counter name present, zeros included."""

    # ---- primitives --------------------------------------------------------------

    @abstractmethod
    def _add_daily_counts(self, day: date, counts: Mapping[str, int]) -> None: ...

    @abstractmethod
    def _write_image(
        self,
        previous: ImageRecord | None,
        updated: ImageRecord | None,
        counts: DailyCounts | None,
        within: Mapping[str, int],
    ) -> ImageRecord | None:
        """Atomically: check ``previous`` is what is stored (or that nothing is, when it
        is None), store ``updated`` (or delete, when it is None) with the next version,
        apply ``counter_changes(previous, updated)`` and add ``counts`` (checked, no
        zeros) to its day's counters; raise ``Conflict`` otherwise, ``NoRoom`` when a
        counter that grows would pass its bucket's limit in ``within`` (``roomy``)."""

    @abstractmethod
    def _images_by_owner(
        self, owner: str, *, limit: int, cursor: str | None
    ) -> Page[ImageRecord]: ...

    @abstractmethod
    def _all_images(self, *, limit: int, cursor: str | None) -> Page[ImageRecord]: ...

    @abstractmethod
    def _images_in_bucket(
        self,
        tier: str,
        bucket: str,
        *,
        uploaded_before: datetime | None,
        with_variants: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[ImageRecord]: ...

    @abstractmethod
    def _due_images(
        self, shard: int, now: datetime, *, limit: int, cursor: str | None
    ) -> Page[ImageRecord]: ...

    @staticmethod
    def _check_pair(previous: ImageRecord, updated: ImageRecord | None) -> None:
        if previous.version is None:
            raise InvalidArgument("previous must be a record read from the repository")
        if updated is not None and updated.id != previous.id:
            raise InvalidArgument(f"cannot replace image {previous.id!r} by {updated.id!r}")
        if updated is not None and updated.version != previous.version:
            raise Conflict(f"image {previous.id!r}: updated record is based on another version")
