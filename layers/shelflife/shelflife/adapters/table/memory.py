"""The repository in a dict: the DynamoDB repository's twin for unit tests."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TypeVar

from shelflife.domain.audit import AuditEntry, AuditLog, AuditQuery
from shelflife.domain.capture import Capture
from shelflife.domain.errors import Conflict, InvalidArgument, NoRoom, RecordNotFound
from shelflife.domain.records import (
    DAILY_COUNTERS,
    BucketRecord,
    BucketStatus,
    CleanupStatus,
    CleanupTask,
    DailyCounts,
    ImageRecord,
    Location,
    Page,
    RunKind,
    RunRecord,
    UploadOutcome,
    due_shard,
)
from shelflife.domain.repository import Repository, counter_changes, roomy

T = TypeVar("T")


def _position(moment: datetime, image_id: str) -> str:
    """An image's place in a listing ordered by ``moment``: strings sort as the times do."""
    return f"{moment.astimezone(UTC).isoformat()}|{image_id}"


def _page(
    items: Iterable[T],
    position: Callable[[T], str],
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
) -> Page[T]:
    """One page of ``items`` in ``position`` order, after ``cursor`` (the position of
    the last item of the previous page). A position, not an item, as in a DynamoDB
    index: the caller may change what it read (soft-delete it, reschedule it), which
    takes it out of the listing, and the next page still follows on."""
    if cursor is not None and "|" not in cursor:
        raise InvalidArgument("invalid page cursor")
    ordered = sorted(items, key=position, reverse=newest_first)
    after = [
        item
        for item in ordered
        if cursor is None or (position(item) < cursor if newest_first else position(item) > cursor)
    ]
    chunk = after[:limit]
    more = len(after) > limit
    return Page(items=chunk, cursor=position(chunk[-1]) if more and chunk else None)


def _uploaded(image: ImageRecord) -> str:
    return _position(image.uploaded_at, image.id)


def _scan(scanned: str, cursor: str | None) -> Callable[[ImageRecord], str]:
    """The position of a record in a scan of ``scanned`` (a bucket, or every image):
    the table's order, by key, as DynamoDB's scan. A cursor names its scan, as the
    DynamoDB adapter's does: one of another scan is refused."""
    if cursor is not None and not cursor.startswith(f"{scanned}|"):
        raise InvalidArgument("invalid page cursor: it belongs to another query, or is not one")
    return lambda image: f"{scanned}|{image.id}"


def _due(image: ImageRecord) -> str:
    assert image.due_at is not None  # only scheduled images are listed by due time
    return _position(image.due_at, image.id)


class MemoryRepository(Repository):
    def __init__(self, *, due_shards: int = 4) -> None:
        super().__init__(due_shards=due_shards)
        self._images: dict[str, ImageRecord] = {}
        self._buckets: dict[tuple[str, str], BucketRecord] = {}
        self._runs: dict[tuple[str, str], RunRecord] = {}
        self._cleanup_tasks: dict[str, CleanupTask] = {}
        self._daily: dict[date, Counter[str]] = defaultdict(Counter)
        self.captures: dict[str, Capture] = {}
        self.upload_outcomes: dict[str, UploadOutcome] = {}
        # When the table's TTL would remove each (a put makes it keep again).
        self.capture_expiry: dict[str, datetime] = {}
        self._lock = threading.RLock()
        # Every image change as (old, new), in order: what the table's stream shows
        # the cleanup function (NEW_AND_OLD_IMAGES), for tests that play its part.
        self.stream: list[tuple[ImageRecord | None, ImageRecord | None]] = []

    # ---- images ------------------------------------------------------------------

    def find_image(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            return self._images.get(image_id)

    def _images_by_owner(self, owner: str, *, limit: int, cursor: str | None) -> Page[ImageRecord]:
        with self._lock:
            mine = [image for image in self._images.values() if image.owner == owner]
        return _page(mine, _uploaded, limit, cursor, newest_first=True)

    def _due_images(
        self, shard: int, now: datetime, *, limit: int, cursor: str | None
    ) -> Page[ImageRecord]:
        with self._lock:
            due = [
                image
                for image in self._images.values()
                if image.next_action is not None
                and image.due_at is not None
                and image.due_at <= now
                and due_shard(image.id, self.due_shards) == shard
            ]
        return _page(due, _due, limit, cursor)

    def _all_images(self, *, limit: int, cursor: str | None) -> Page[ImageRecord]:
        with self._lock:
            found = list(self._images.values())
        return _page(found, _scan("*", cursor), limit, cursor)

    def _images_in_bucket(
        self,
        tier: str,
        bucket: str,
        *,
        uploaded_before: datetime | None,
        with_variants: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[ImageRecord]:
        def there(place: Location | None) -> bool:
            return place is not None and (place.tier.value, place.bucket) == (tier, bucket)

        with self._lock:
            found = [
                image
                for image in self._images.values()
                if image.live
                and (there(image.location) or (with_variants and there(image.variants_bucket)))
                and (uploaded_before is None or image.uploaded_at < uploaded_before)
            ]
        # In the table's order, as DynamoDB's scan (by key, not by upload time): a
        # caller that needs an order sorts what it read.
        partition = f"{tier}#{bucket}" + ("#variants" if with_variants else "")
        return _page(found, _scan(partition, cursor), limit, cursor)

    def _write_image(
        self,
        previous: ImageRecord | None,
        updated: ImageRecord | None,
        counts: DailyCounts | None,
        within: Mapping[str, int],
    ) -> ImageRecord | None:
        image_id = (updated or previous).id  # type: ignore[union-attr]
        with self._lock:
            stored = self._images.get(image_id)
            if previous is None and stored is not None:
                raise Conflict(f"image {image_id!r} already exists")
            if previous is not None and (stored is None or stored.version != previous.version):
                raise Conflict(f"image {image_id!r} changed since it was read")
            changes = counter_changes(previous, updated)
            for change in changes:
                if (change.tier, change.bucket) not in self._buckets:
                    raise Conflict(
                        f"bucket {change.bucket!r} of tier {change.tier!r} is not recorded"
                    )
                bucket = self._buckets[(change.tier, change.bucket)]
                limit = within.get(change.bucket)
                if limit is not None and not roomy(
                    bucket.used_bytes, bucket.object_count, change, limit
                ):
                    raise NoRoom(
                        f"bucket {change.bucket!r} would pass {limit} bytes", bucket=change.bucket
                    )
            for change in changes:
                bucket = self._buckets[(change.tier, change.bucket)]
                self._buckets[(change.tier, change.bucket)] = bucket.model_copy(
                    update={
                        "used_bytes": bucket.used_bytes + change.bytes,
                        "object_count": bucket.object_count + change.objects,
                    }
                )
            if counts is not None:
                self._daily[counts.day].update(counts.counts)
            if updated is None:
                del self._images[image_id]
                self.stream.append((stored, None))
                return None
            written = updated.model_copy(
                update={"version": (stored.version or 0) + 1 if stored else 1}
            )
            self._images[image_id] = written
            self.stream.append((stored, written))
            return written

    # ---- buckets -----------------------------------------------------------------

    def add_bucket(self, bucket: BucketRecord) -> BucketRecord:
        with self._lock:
            if (bucket.tier.value, bucket.name) in self._buckets:
                raise Conflict(f"bucket {bucket.name!r} is already recorded")
            self._buckets[(bucket.tier.value, bucket.name)] = bucket
            return bucket

    def list_buckets(self, tier: str | None = None) -> list[BucketRecord]:
        with self._lock:
            return [
                self._buckets[key]
                for key in sorted(self._buckets)
                if tier is None or key[0] == tier
            ]

    def set_bucket_status(self, tier: str, name: str, status: BucketStatus) -> BucketRecord:
        return self._update_bucket(tier, name, status=status)

    def set_bucket_counters(
        self,
        tier: str,
        name: str,
        *,
        used_bytes: int,
        object_count: int,
        expected: tuple[int, int] | None = None,
    ) -> BucketRecord:
        with self._lock:
            if expected is not None:
                current = self._buckets.get((tier, name))
                if current is not None and (current.used_bytes, current.object_count) != expected:
                    raise Conflict(f"bucket {name!r}: counters changed since they were read")
            return self._update_bucket(tier, name, used_bytes=used_bytes, object_count=object_count)

    def _update_bucket(self, tier: str, name: str, **changes: object) -> BucketRecord:
        with self._lock:
            try:
                bucket = self._buckets[(tier, name)]
            except KeyError:
                raise RecordNotFound(f"no bucket {name!r} in tier {tier!r}") from None
            updated = bucket.model_copy(update=changes)
            self._buckets[(tier, name)] = updated
            return updated

    # ---- capture metadata ----------------------------------------------------------

    def put_upload_outcome(self, outcome: UploadOutcome) -> None:
        with self._lock:
            self.upload_outcomes[outcome.upload_id] = outcome

    def find_upload_outcome(self, upload_id: str) -> UploadOutcome | None:
        with self._lock:
            return self.upload_outcomes.get(upload_id)

    def put_capture(self, image_id: str, capture: Capture) -> None:
        with self._lock:
            self.captures[image_id] = capture
            self.capture_expiry.pop(image_id, None)

    def find_capture(self, image_id: str) -> Capture | None:
        with self._lock:
            return self.captures.get(image_id)

    def expire_capture(self, image_id: str, at: datetime) -> None:
        with self._lock:
            if image_id in self.captures:
                self.capture_expiry[image_id] = at

    def keep_capture(self, image_id: str) -> None:
        with self._lock:
            self.capture_expiry.pop(image_id, None)

    # ---- runs --------------------------------------------------------------------

    def save_run(self, run: RunRecord) -> RunRecord:
        with self._lock:
            self._runs[(run.kind.value, run.id)] = run
            return run

    def recent_runs(
        self, kind: RunKind, *, limit: int = 20, since: datetime | None = None
    ) -> list[RunRecord]:
        with self._lock:
            runs = [
                run
                for (k, _), run in self._runs.items()
                if k == kind.value and (since is None or run.started_at >= since)
            ]
        return sorted(runs, key=lambda run: (run.started_at, run.id), reverse=True)[:limit]

    def find_run(self, kind: RunKind, started_at: datetime, run_id: str) -> RunRecord | None:
        with self._lock:
            run = self._runs.get((kind.value, run_id))
        return run if run is not None and run.started_at == started_at else None

    # ---- daily counts --------------------------------------------------------------

    def _add_daily_counts(self, day: date, counts: Mapping[str, int]) -> None:
        with self._lock:
            self._daily[day].update(counts)

    def daily_counts(self, since: date) -> list[DailyCounts]:
        with self._lock:
            return [
                DailyCounts(day=day, counts={name: counts[name] for name in DAILY_COUNTERS})
                for day, counts in sorted(self._daily.items())
                if day >= since
            ]

    # ---- cleanup tasks -------------------------------------------------------------

    def save_cleanup_task(self, task: CleanupTask) -> CleanupTask:
        with self._lock:
            self._cleanup_tasks[task.event_id] = task
            return task

    def find_cleanup_task(self, event_id: str) -> CleanupTask | None:
        with self._lock:
            return self._cleanup_tasks.get(event_id)

    def cleanup_tasks(
        self, *, status: CleanupStatus | None = None, updated_since: datetime | None = None
    ) -> list[CleanupTask]:
        with self._lock:
            tasks = [
                task
                for task in self._cleanup_tasks.values()
                if (status is None or task.status is status)
                and (updated_since is None or task.updated_at >= updated_since)
            ]
        return sorted(tasks, key=lambda task: (task.updated_at, task.event_id), reverse=True)


class MemoryAuditLog(AuditLog):
    """The audit table in a dict, ordered as the DynamoDB one: an image's entries by
    ``seq``, a search by day and ``position``."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], AuditEntry] = {}
        self._lock = threading.Lock()

    def record(self, entry: AuditEntry) -> None:
        with self._lock:
            self.entries[(entry.image_id, entry.seq)] = entry

    def history(self, image_id: str, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        with self._lock:
            mine = [entry for (image, _), entry in self.entries.items() if image == image_id]
        return _page(mine, lambda entry: f"{image_id}|{entry.seq}", limit, _mine(cursor, image_id))

    def search(self, query: AuditQuery, *, limit: int, cursor: str | None) -> Page[AuditEntry]:
        # A scan, as the DynamoDB table's: the table's order (by key) across pages, a
        # cursor naming its query (another query's is refused), each page by time.
        asked = query.fingerprint()
        if cursor is not None and not cursor.startswith(f"{asked}|"):
            raise InvalidArgument("invalid page cursor: it belongs to another query, or is not one")
        with self._lock:
            found = [entry for entry in self.entries.values() if query.matches(entry)]
        page = _page(found, lambda e: f"{asked}|{e.image_id}|{e.seq}", limit, cursor)
        page.items.sort(key=lambda entry: (entry.at, entry.image_id, entry.seq))
        return page


def _mine(cursor: str | None, image_id: str) -> str | None:
    if cursor is not None and not cursor.startswith(f"{image_id}|"):
        raise InvalidArgument("invalid page cursor: it belongs to another query, or is not one")
    return cursor
