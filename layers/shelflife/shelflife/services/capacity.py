"""The capacity check: every bucket's usage against its quota, age-based cleanup past
the cleanup threshold, and overflow buckets past the overflow threshold.

Usage comes from the counters on the bucket records (moved in the same transaction as
the image records), so a check costs one query of the bucket records whatever the
number of objects. Listing buckets is the reconciler's job, not this one's.

Every step is safe to repeat: a check that crashes part-way is finished by the next one
(the next on the schedule, `CapacityCheckRate`), and two checks at once do the same thing twice
at worst, never two different things (see ``shelflife.services.placement`` for overflow).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shelflife.domain.audit import acting
from shelflife.domain.clock import utc_now
from shelflife.domain.errors import Conflict, NoBucketAvailable, StorageError
from shelflife.domain.measurements import Measurement
from shelflife.domain.policy import cleanup_eligible, soft_deleted
from shelflife.domain.records import (
    BucketRecord,
    BucketStatus,
    ImageRecord,
    RunKind,
    RunRecord,
    RunStatus,
    new_run_id,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.services.placement import Placement

if TYPE_CHECKING:
    from shelflife.domain.storage import Backends

CLEANUP_PAGE = 100


@dataclass(frozen=True)
class BucketReport:
    tier: str
    backend: str
    name: str
    used_bytes: int
    capacity_bytes: int
    object_count: int
    status: str

    @property
    def percent(self) -> float:
        return 100 * self.used_bytes / self.capacity_bytes

    @classmethod
    def of(cls, bucket: BucketRecord) -> BucketReport:
        return cls(
            tier=bucket.tier.value,
            backend=bucket.backend.value,
            name=bucket.name,
            used_bytes=bucket.used_bytes,
            capacity_bytes=bucket.capacity_bytes,
            object_count=bucket.object_count,
            status=bucket.status.value,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "percent": round(self.percent, 2)}


@dataclass
class CleanupResult:
    tier: str
    bucket: str
    threshold_percent: float
    dry_run: bool
    examined: int = 0
    # Ids deleted (or, in a dry run, that would be), oldest upload first.
    deleted: list[str] = field(default_factory=list)
    # Every byte the deletions free: the photos and all their variants, wherever.
    freed_bytes: int = 0
    not_eligible: int = 0
    # Changed between the read and the delete (moved, accessed, deleted): left alone.
    changed: int = 0
    used_bytes_after: int = 0
    under_threshold: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def held_in(image: ImageRecord, tier: TierName, bucket: str) -> int:
    """The bytes ``image`` counts in ``bucket``: the photo, and those of its sized
    variants that are there too (a HOT bucket that is also the variants bucket). A
    cleanup that counted the photo alone would delete more photos than the bucket
    needs to go under its threshold."""
    return sum(size for place, size in image.held() if (place.tier, place.bucket) == (tier, bucket))


def cleanup_measurements(results: list[CleanupResult]) -> list[Measurement]:
    return [
        Measurement("CleanupImagesDeleted", sum(len(result.deleted) for result in results)),
        Measurement("CleanupBytesFreed", sum(result.freed_bytes for result in results), "Bytes"),
    ]


@dataclass
class CapacityReport:
    run_id: str
    checked_at: datetime
    dry_run: bool
    buckets: list[BucketReport] = field(default_factory=list)
    cleanups: list[CleanupResult] = field(default_factory=list)
    marked_full: list[str] = field(default_factory=list)
    # Full buckets back under the cleanup threshold, accepting objects again.
    reopened: list[str] = field(default_factory=list)
    # Tiers with no active bucket under the overflow threshold (before any was opened).
    overflow_needed: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def counts(self, settings: Settings) -> dict[str, int]:
        return {
            "buckets": len(self.buckets),
            "over_cleanup_threshold": sum(
                b.percent >= settings.cleanup_threshold_percent for b in self.buckets
            ),
            "over_overflow_threshold": sum(
                b.percent >= settings.overflow_threshold_percent for b in self.buckets
            ),
            "images_deleted": sum(len(c.deleted) for c in self.cleanups),
            "bytes_freed": sum(c.freed_bytes for c in self.cleanups),
            "marked_full": len(self.marked_full),
            "reopened": len(self.reopened),
            "overflow_opened": len(self.opened),
            "overflow_failed": len(self.failures),
        }

    def measurements(self, settings: Settings) -> list[Measurement]:
        """Each bucket's and tier's usage, and the run's counts (the alarms in
        template.yaml watch BucketsMarkedFull and OverflowCreationFailures); a dry run
        publishes none."""
        if self.dry_run:
            return []
        found = [
            Measurement(
                "BucketUsedPercent",
                bucket.percent,
                "Percent",
                (("tier", bucket.tier), ("bucket", bucket.name)),
            )
            for bucket in self.buckets
        ]
        tiers: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for bucket in self.buckets:
            if bucket.status != "missing":
                tiers[bucket.tier][0] += bucket.used_bytes
                tiers[bucket.tier][1] += bucket.capacity_bytes
        found += [
            Measurement("TierUsedPercent", 100 * used / capacity, "Percent", (("tier", tier),))
            for tier, (used, capacity) in sorted(tiers.items())
        ]
        counts = self.counts(settings)
        return [
            *found,
            Measurement("BucketsMarkedFull", counts["marked_full"]),
            Measurement("OverflowCreationFailures", counts["overflow_failed"]),
            Measurement("OverflowBucketsOpened", counts["overflow_opened"]),
            *cleanup_measurements(self.cleanups),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "checked_at": self.checked_at.isoformat(),
            "dry_run": self.dry_run,
            "buckets": [bucket.as_dict() for bucket in self.buckets],
            "cleanups": [cleanup.as_dict() for cleanup in self.cleanups],
            "marked_full": self.marked_full,
            "reopened": self.reopened,
            "overflow_needed": self.overflow_needed,
            "opened": self.opened,
            "failures": self.failures,
        }


class CapacityService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        backends: Backends,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.clock = clock
        self.placement = Placement(repository, settings, backends, clock=clock)

    # ---- the check -----------------------------------------------------------------

    def check(self, *, dry_run: bool = False) -> CapacityReport:
        """Report every bucket; clean up past the cleanup threshold; mark full and open
        an overflow bucket past the overflow threshold. ``dry_run`` changes nothing and
        reports what would be done."""
        now = self.clock()
        report = CapacityReport(run_id=new_run_id(now), checked_at=now, dry_run=dry_run)
        try:
            buckets = self._buckets()
            # Each family of buckets on its own: HOT's serving buckets (another backend)
            # fill and overflow apart from HOT's own.
            for tier, backend in self._shelves(buckets):
                self._check_tier(
                    tier,
                    [b for b in buckets if b.tier is tier and b.backend is backend],
                    report,
                    now,
                    backend,
                )
            report.buckets = [BucketReport.of(b) for b in self._buckets()]
        except Exception:
            self._save_run(report, RunStatus.FAILED)
            raise
        self._save_run(report, RunStatus.COMPLETED)
        return report

    def _check_tier(
        self,
        tier: TierName,
        buckets: list[BucketRecord],
        report: CapacityReport,
        now: datetime,
        backend: BackendName,
    ) -> None:
        settings = self.settings
        current = []
        for bucket in buckets:
            if (
                bucket.status in (BucketStatus.ACTIVE, BucketStatus.FULL)
                and bucket.used_fraction * 100 >= settings.cleanup_threshold_percent
            ):
                cleanup = self.cleanup(tier, bucket.name, dry_run=report.dry_run, now=now)
                report.cleanups.append(cleanup)
                bucket = bucket.model_copy(update={"used_bytes": cleanup.used_bytes_after})
            current.append(bucket)
        for index, bucket in enumerate(current):
            percent = bucket.used_fraction * 100
            status = bucket.status
            if status is BucketStatus.ACTIVE and percent >= settings.overflow_threshold_percent:
                status = BucketStatus.FULL
                report.marked_full.append(bucket.name)
            elif status is BucketStatus.FULL and percent < settings.cleanup_threshold_percent:
                status = BucketStatus.ACTIVE
                report.reopened.append(bucket.name)
            if status is not bucket.status:
                if not report.dry_run:
                    self.repository.set_bucket_status(tier.value, bucket.name, status)
                current[index] = bucket.model_copy(update={"status": status})
        roomy = [
            bucket
            for bucket in current
            if bucket.status is BucketStatus.ACTIVE
            and bucket.used_fraction * 100 < settings.overflow_threshold_percent
        ]
        if roomy:
            return
        if (tier, backend) not in self.settings.shelves():
            return  # a backend the tier has left: nothing new goes there
        report.overflow_needed.append(tier.value)
        if report.dry_run:
            return
        try:
            opened = self.placement.open_overflow(tier, backend=backend)
        except (StorageError, NoBucketAvailable) as e:
            report.failures.append(f"{tier.value}: {e}")
            return
        report.opened.append(opened.name)

    # ---- age-based cleanup ---------------------------------------------------------

    def cleanup(
        self,
        tier: TierName,
        bucket: str,
        *,
        dry_run: bool = True,
        now: datetime | None = None,
        threshold_percent: float | None = None,
        requested_by: str | None = None,
    ) -> CleanupResult:
        """Soft-delete the bucket's eligible images (``shelflife.domain.policy``), oldest
        upload first, until its usage is under ``threshold_percent`` (default: the
        cleanup threshold) or nothing more is eligible. The cleanup function deletes
        the objects when the stream shows the records soft-deleted."""
        now = now or self.clock()
        threshold = threshold_percent or self.settings.cleanup_threshold_percent
        record = self.repository.get_bucket(tier.value, bucket)
        result = CleanupResult(
            tier=tier.value, bucket=bucket, threshold_percent=threshold, dry_run=dry_run
        )
        used = record.used_bytes
        limit = record.capacity_bytes * threshold / 100
        # Who deleted, for the audit trail: the capacity check, or the admin who
        # asked for an age-based cleanup (POST /cleanup/old-images).
        actor = requested_by or "capacity"
        cleanup_reason = (
            f"{'age-based' if requested_by else 'capacity'} cleanup: {tier.value} bucket "
            f"{bucket} at {100 * used / record.capacity_bytes:.1f} %, over {threshold:g} %"
        )
        cutoff = now - timedelta(days=self.settings.cleanup_min_age_days)
        if used < limit:
            candidates: list[ImageRecord] = []
        else:
            candidates = self._oldest_eligible(tier, bucket, cutoff, now, used - limit, result)
        for image in candidates:
            if used < limit:
                break
            if not dry_run:
                try:
                    with acting(actor, reason=cleanup_reason, clock=self.clock):
                        self.repository.replace_image(
                            image, soft_deleted(image, now, self.settings)
                        )
                except Conflict:
                    result.changed += 1
                    continue
            result.deleted.append(image.id)
            result.freed_bytes += sum(size for _, size in image.held())
            used -= held_in(image, tier, bucket)
        result.used_bytes_after = used
        result.under_threshold = used < limit
        return result

    def _oldest_eligible(
        self,
        tier: TierName,
        bucket: str,
        cutoff: datetime,
        now: datetime,
        needed: float,
        result: CleanupResult,
    ) -> list[ImageRecord]:
        """The bucket's eligible images uploaded before ``cutoff``, oldest first, as
        many as free more than ``needed`` bytes (all of them if they do not). The
        records come in no order (a scan, ``Repository.images_in_bucket``): a heap
        keeps the oldest, the newest dropped as soon as the older ones are enough, so
        memory holds what is deleted, not the bucket."""
        newest_on_top: list[tuple[float, str, ImageRecord]] = []
        held = 0
        cursor: str | None = None
        while True:
            page = self.repository.images_in_bucket(
                tier.value, bucket, uploaded_before=cutoff, limit=CLEANUP_PAGE, cursor=cursor
            )
            for image in page.items:
                result.examined += 1
                if not cleanup_eligible(image, now, self.settings):
                    result.not_eligible += 1
                    continue
                heapq.heappush(newest_on_top, (-image.uploaded_at.timestamp(), image.id, image))
                held += held_in(image, tier, bucket)
                while held - held_in(newest_on_top[0][2], tier, bucket) > needed:
                    held -= held_in(heapq.heappop(newest_on_top)[2], tier, bucket)
            if page.cursor is None:
                break
            cursor = page.cursor
        return sorted((entry[2] for entry in newest_on_top), key=lambda i: (i.uploaded_at, i.id))

    # ---- helpers -------------------------------------------------------------------

    def cleanup_request(self, request: Mapping[str, Any]) -> tuple[list[str], list[CleanupResult]]:
        """A cleanup read by ``shelflife.domain.requests.capacity_request``: of its
        bucket, or of every bucket of its tier. Returns the buckets and their results."""
        tier: TierName = request["tier"]
        names = (
            [request["bucket"]]
            if request["bucket"]
            else [bucket.name for bucket in self.repository.list_buckets(tier.value)]
        )
        results = [
            self.cleanup(
                tier,
                name,
                dry_run=request["dry_run"],
                threshold_percent=request["threshold_percent"],
                requested_by=request.get("requested_by"),
            )
            for name in names
        ]
        return names, results

    def _buckets(self) -> list[BucketRecord]:
        """Every bucket record in one query; a tier with none yet gets its configured
        first bucket recorded (a fresh deployment)."""
        buckets = self.repository.list_buckets()
        missing = set(self.settings.shelves()) - {(b.tier, b.backend) for b in buckets}
        if not missing:
            return buckets
        for tier, backend in sorted(missing):
            self.placement.buckets(tier, backend)
        return self.repository.list_buckets()

    def _shelves(self, buckets: list[BucketRecord]) -> list[tuple[TierName, BackendName]]:
        """The configured families of buckets, then any other recorded (a tier whose
        backend was changed keeps its old buckets, checked but not overflowed into)."""
        shelves = list(self.settings.shelves())
        for bucket in buckets:
            if (bucket.tier, bucket.backend) not in shelves:
                shelves.append((bucket.tier, bucket.backend))
        return shelves

    def _save_run(self, report: CapacityReport, status: RunStatus) -> None:
        finished = self.clock()
        self.repository.save_run(
            RunRecord(
                kind=RunKind.CAPACITY,
                id=report.run_id,
                started_at=report.checked_at,
                finished_at=finished,
                status=status,
                dry_run=report.dry_run,
                counts=report.counts(self.settings),
                expires_at=finished + timedelta(days=self.settings.run_record_days),
            )
        )
