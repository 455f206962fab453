"""What the store holds and costs, what it did, and what an operator should look at:
the numbers behind the API's stats, metrics, tiers and buckets routes and the
dashboard.

Everything is read from records the functions keep anyway (bucket counters, run
records, daily counters, cleanup tasks): no listing of buckets, no scan of images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shelflife.domain import pricebook
from shelflife.domain.clock import utc_now
from shelflife.domain.costs import GB
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.policy import PENDING_CLAIM_LIFETIME, rules
from shelflife.domain.records import (
    BucketRecord,
    BucketStatus,
    RunKind,
    RunRecord,
    RunStatus,
    new_run_id,
)
from shelflife.domain.repository import Repository
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.tuning import publish_age_bound
from shelflife.services.cleanup import CleanupHealth
from shelflife.services.lifecycle import lifecycle_totals

MAX_METRIC_DAYS = 365
# How long a pricing of the workload (shelflife recommend) is kept for the dashboard.
PRICING_DAYS = 400
# The lifecycle runs daily: no completed run for this long means it is not running.
LIFECYCLE_SILENCE = timedelta(hours=26)
# Due longer ago than this and still not done: a sweep is failing on it.
STUCK_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class TierStats:
    tier: str
    backend: str
    photos: int
    bytes: int
    buckets: int
    capacity_bytes: int
    price_per_gb_month: float
    monthly_cost: float


@dataclass(frozen=True)
class StoreStats:
    tiers: list[TierStats]
    photos: int
    bytes: int
    monthly_cost: float
    # What the same bytes would cost a month kept in HOT, and the difference.
    all_hot_monthly_cost: float
    monthly_savings: float
    # What the comparison is against, in words (the price book's offer and price).
    baseline: str = ""
    # The stack's own bill whatever it stores (the price book's fixed items and
    # scheduled runs for this deployment's shape), not in monthly_cost.
    stack_fixed_monthly_cost: float = 0.0
    prices_checked: str = ""


@dataclass(frozen=True)
class Workload:
    """What the deployment's own counters say of its workload over ``days`` days: the
    figures ``shelflife recommend`` replays."""

    days: int
    uploads: int
    published: int
    # Of the publishes, the photo's age then: the smallest bound (days) within which
    # 99 % of them happened (None: none counted, or later than 90 days).
    publish_within_days: int | None
    # Requests for a published photo's URL through the API (view-days).
    published_views: int
    photos: int
    stored_bytes: int

    @property
    def uploads_per_month(self) -> float:
        return self.uploads * 30 / self.days

    @property
    def publish_rate(self) -> float:
        return min(1.0, self.published / self.uploads) if self.uploads else 0.0

    @property
    def views_per_published(self) -> float:
        return self.published_views / self.published if self.published else 0.0

    @property
    def mean_stored_bytes(self) -> float:
        return self.stored_bytes / self.photos if self.photos else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "uploads": self.uploads,
            "published": self.published,
            "published_views": self.published_views,
            "photos": self.photos,
            "stored_bytes": self.stored_bytes,
            "uploads_per_month": round(self.uploads_per_month, 3),
            "publish_rate": round(self.publish_rate, 4),
            "publish_within_days": self.publish_within_days,
            "views_per_published": round(self.views_per_published, 3),
            "mean_stored_bytes": round(self.mean_stored_bytes),
        }


@dataclass(frozen=True)
class Recommendation:
    severity: str  # "info", "warning" or "critical"
    code: str
    message: str


@dataclass(frozen=True)
class BucketUsageReport:
    """One bucket's usage and lines: what GET /buckets answers (the API's schema is this
    class) and the dashboard draws."""

    tier: TierName
    backend: str
    name: str
    status: str
    used_bytes: int
    capacity_bytes: int
    object_count: int
    percent: float
    cleanup_threshold_percent: float
    overflow_threshold_percent: float


@dataclass
class Activity:
    days: int
    counts: dict[str, int] = field(default_factory=dict)


class StatsService:
    def __init__(
        self,
        settings: Settings,
        repository: Repository,
        *,
        cleanup_health: Callable[[], CleanupHealth] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.cleanup_health = cleanup_health
        self.clock = clock

    # ---- sizes and costs -----------------------------------------------------------

    def stats(self) -> StoreStats:
        """Photos, bytes and the monthly storage cost per tier, from the bucket
        counters (a bucket the provider lost is left out: nothing is stored there)."""
        buckets = [
            b for b in self.repository.list_buckets() if b.status is not BucketStatus.MISSING
        ]
        tiers = [self._tier(tier, [b for b in buckets if b.tier is tier]) for tier in TierName]
        total = sum(tier.bytes for tier in tiers)
        cost = sum(tier.monthly_cost for tier in tiers)
        all_hot = self._monthly(TierName.HOT, total)
        prices = pricebook.book()
        hot_offer = self.settings.offer_name(TierName.HOT) or "no offer"
        return StoreStats(
            tiers=tiers,
            photos=sum(tier.photos for tier in tiers),
            bytes=total,
            monthly_cost=round(cost, 6),
            all_hot_monthly_cost=round(all_hot, 6),
            monthly_savings=round(all_hot - cost, 6),
            baseline=(
                f"the same stored bytes all in HOT ({hot_offer}, "
                f"{self.settings.tier_price_per_gb_month(TierName.HOT):g} USD per GB-month); "
                "storage only, as monthly_cost (requests, egress and the stack are not in "
                "either; shelflife simulate compares whole bills)"
            ),
            stack_fixed_monthly_cost=round(
                prices.stack_fixed_monthly(self.settings.stack_shape()), 6
            ),
            prices_checked=prices.transfer.checked,
        )

    def breakdown(self) -> list[dict[str, Any]]:
        """Each tier's monthly cost and its share of the bytes and of the cost."""
        stats = self.stats()
        return [
            {
                "tier": tier.tier,
                "backend": tier.backend,
                "bytes": tier.bytes,
                "monthly_cost": tier.monthly_cost,
                "share_of_bytes": _share(tier.bytes, stats.bytes),
                "share_of_cost": _share(tier.monthly_cost, stats.monthly_cost),
            }
            for tier in stats.tiers
        ]

    def buckets(self) -> list[BucketUsageReport]:
        return [
            BucketUsageReport(
                tier=b.tier,
                backend=b.backend.value,
                name=b.name,
                status=b.status.value,
                used_bytes=b.used_bytes,
                capacity_bytes=b.capacity_bytes,
                object_count=b.object_count,
                percent=round(100 * b.used_fraction, 2),
                cleanup_threshold_percent=self.settings.cleanup_threshold_percent,
                overflow_threshold_percent=self.settings.overflow_threshold_percent,
            )
            for b in sorted(
                self.repository.list_buckets(), key=lambda b: (list(TierName).index(b.tier), b.name)
            )
        ]

    def tiers(self) -> dict[str, Any]:
        """The tiers, their backends and prices, and the lifecycle rules, as the
        settings make them."""
        s = self.settings
        return {
            "tiers": [
                {
                    "tier": tier.value,
                    "backend": s.tier(tier).backend.value,
                    "bucket": s.tier(tier).bucket,
                    "bucket_capacity_bytes": s.tier(tier).quota_bytes,
                    "price_per_gb_month": s.tier_price_per_gb_month(tier),
                }
                for tier in TierName
            ],
            # Where published photos are served from when their views pay (None: HOT).
            "serve": None
            if s.serve is None
            else {
                "backend": s.serve.backend.value,
                "bucket": s.serve.bucket,
                "bucket_capacity_bytes": s.serve.quota_bytes,
                "price_per_gb_month": s.tier_price_per_gb_month(TierName.HOT, s.serve.backend),
                "when": s.serve_published,
            },
            "rules": rules(s),
            "capacity": {
                "cleanup_threshold_percent": s.cleanup_threshold_percent,
                "overflow_threshold_percent": s.overflow_threshold_percent,
                "cleanup_min_age_days": s.cleanup_min_age_days,
            },
            "limits": {
                "max_upload_bytes": s.max_upload_bytes,
                "url_expiry_seconds": s.url_expiry_seconds,
                "published_url_expiry_seconds": s.published_url_expiry_seconds,
                "user_quota_bytes": s.user_quota_bytes,
            },
        }

    # ---- activity ------------------------------------------------------------------

    def activity(self, days: int) -> Activity:
        """What happened in the last ``days`` days: uploads (and duplicates and
        rejections) from the daily counters, moves and deletions from the lifecycle
        runs, deletions by owners."""
        if not 1 <= days <= MAX_METRIC_DAYS:
            raise InvalidArgument(f"days must be between 1 and {MAX_METRIC_DAYS}, got {days}")
        now = self.clock()
        since = now - timedelta(days=days)
        daily: dict[str, int] = {}
        for day in self.repository.daily_counts(since.date()):
            for name, value in day.counts.items():
                daily[name] = daily.get(name, 0) + value
        runs = lifecycle_totals(self.repository, since)
        counts = {
            "uploaded": daily.get("uploaded", 0),
            "duplicates": daily.get("duplicates", 0),
            "rejected": daily.get("rejected", 0),
            "published": daily.get("published", 0),
            "promoted": runs["promoted"],
            "archived": runs["archived"],
            "restored": runs["restored"],
            "deleted": runs["deleted"] + daily.get("deleted_by_owner", 0),
            "deleted_by_lifecycle": runs["deleted"],
            "deleted_by_owner": daily.get("deleted_by_owner", 0),
            "lifecycle_runs": runs["runs"],
        }
        return Activity(days=days, counts=counts)

    def record_pricing(self, pricing: Mapping[str, Any]) -> RunRecord:
        """Keep a pricing of this deployment's workload (``shelflife recommend``'s,
        validated by the API) for the dashboard, ``PRICING_DAYS`` days."""
        now = self.clock()
        run = RunRecord(
            kind=RunKind.PRICING,
            id=new_run_id(now),
            started_at=now,
            finished_at=now,
            status=RunStatus.COMPLETED,
            details=dict(pricing),
            expires_at=now + timedelta(days=PRICING_DAYS),
        )
        return self.repository.save_run(run)

    def last_pricing(self) -> RunRecord | None:
        runs = self.repository.recent_runs(RunKind.PRICING, limit=1)
        return runs[0] if runs else None

    def lifecycle_runs(self, days: int = 30, *, limit: int = 60) -> list[RunRecord]:
        """The lifecycle runs of the last ``days`` days, oldest first (for charts)."""
        since = self.clock() - timedelta(days=days)
        runs = self.repository.recent_runs(RunKind.LIFECYCLE, limit=limit, since=since)
        return sorted(runs, key=lambda run: run.started_at)

    # ---- advice --------------------------------------------------------------------

    def workload(self, days: int = 60) -> Workload:
        """The workload of the last ``days`` days, from the daily counters and the
        bucket counters (no image is read)."""
        if not 1 <= days <= MAX_METRIC_DAYS:
            raise InvalidArgument(f"days must be between 1 and {MAX_METRIC_DAYS}, got {days}")
        counted = self.repository.daily_counts((self.clock() - timedelta(days=days)).date())
        within, _ = publish_age_bound(counted, 0.99)
        stats = self.stats()
        return Workload(
            days=days,
            uploads=sum(day.counts.get("uploaded", 0) for day in counted),
            published=sum(day.counts.get("published", 0) for day in counted),
            publish_within_days=within,
            published_views=sum(day.counts.get("published_views", 0) for day in counted),
            photos=stats.photos,
            stored_bytes=stats.bytes,
        )

    def recommendations(self) -> list[Recommendation]:
        """What an operator should look at, most severe first."""
        found: list[Recommendation] = []
        s = self.settings
        for bucket in self.buckets():
            if bucket.status == BucketStatus.MISSING.value:
                found.append(
                    Recommendation(
                        "critical",
                        "bucket_missing",
                        f"bucket {bucket.name} ({bucket.tier}) is gone at the provider; "
                        "run a reconcile to see the records that point to it",
                    )
                )
            elif bucket.percent >= s.overflow_threshold_percent:
                found.append(
                    Recommendation(
                        "critical",
                        "bucket_full",
                        f"bucket {bucket.name} ({bucket.tier}) is {bucket.percent:.1f}% full; "
                        "new images go to an overflow bucket",
                    )
                )
            elif bucket.percent >= s.cleanup_threshold_percent:
                found.append(
                    Recommendation(
                        "warning",
                        "bucket_near_full",
                        f"bucket {bucket.name} ({bucket.tier}) is {bucket.percent:.1f}% full, "
                        f"past the {s.cleanup_threshold_percent:g}% cleanup line",
                    )
                )
        for tier in self.stats().tiers:
            if tier.capacity_bytes and 100 * tier.bytes / tier.capacity_bytes >= (
                s.cleanup_threshold_percent
            ):
                found.append(
                    Recommendation(
                        "warning",
                        "tier_near_full",
                        f"tier {tier.tier} is {100 * tier.bytes / tier.capacity_bytes:.1f}% "
                        "of its buckets' capacity",
                    )
                )
        if self.cleanup_health is not None:
            health = self.cleanup_health()
            if health.dead_letters:
                found.append(
                    Recommendation(
                        "critical",
                        "cleanup_dead_letters",
                        f"{health.dead_letters} cleanups wait in the dead-letter queue; fix "
                        "the cause, then POST /cleanup/redrive",
                    )
                )
            elif health.status != "ok":
                found.append(
                    Recommendation("warning", "cleanup_failing", "; ".join(health.reasons))
                )
        found.extend(self._overdue())
        found.extend(self._lifecycle_health())
        found.extend(self._serving())
        order = {"critical": 0, "warning": 1, "info": 2}
        return sorted(found, key=lambda item: order[item.severity])

    def _serving(self) -> list[Recommendation]:
        """Published photos served from a provider that charges for it: what the
        measured views cost (a lower bound: a view-day may be several views)."""
        hot = self.settings.tier(TierName.HOT).backend
        egress = self.settings.egress_per_gb(hot)
        if self.settings.serve is not None and self.settings.serve_published != "never":
            return []  # served from the serving buckets once the views pay for it
        measured = self.workload(30)
        if not egress or measured.views_per_published <= 1:
            return []  # moving a photo out costs about one view's egress: no gain
        monthly = measured.published_views * measured.mean_stored_bytes / GB * egress
        return [
            Recommendation(
                "info",
                "serving_costs",
                f"published photos were asked for {measured.views_per_published:.1f} days "
                f"each in the last 30 days; serving them from {hot.value} costs at least "
                f"{monthly:.4f} USD a month in egress. With ServeBackend=r2 the store serves "
                "them from R2 once their views pay for the move; `shelflife recommend` "
                "prices it on this workload",
            )
        ]

    def _overdue(self) -> list[Recommendation]:
        cutoff = self.clock() - STUCK_AFTER
        overdue = moving = 0
        for shard in range(self.repository.due_shards):
            page = self.repository.due_images(shard, cutoff, limit=100)
            overdue += len(page.items)
            moving += sum(image.move_to is not None for image in page.items)
        if not overdue:
            return []
        return [
            Recommendation(
                "warning",
                "images_overdue",
                f"{overdue}{'+' if overdue >= 100 * self.repository.due_shards else ''} images "
                f"are overdue by more than {STUCK_AFTER.days} day ({moving} stuck mid-move, "
                f"pending claims older than {PENDING_CLAIM_LIFETIME.days} day included): "
                "check the lifecycle function's errors",
            )
        ]

    def _lifecycle_health(self) -> list[Recommendation]:
        runs = [
            run
            for run in self.repository.recent_runs(RunKind.LIFECYCLE, limit=10)
            if not run.dry_run
        ]
        if not runs:
            return [Recommendation("info", "lifecycle_never_ran", "no lifecycle run recorded yet")]
        latest = runs[0]
        if latest.status is RunStatus.FAILED:
            return [
                Recommendation(
                    "warning", "lifecycle_failed", f"the last lifecycle run ({latest.id}) failed"
                )
            ]
        if self.clock() - latest.started_at > LIFECYCLE_SILENCE:
            return [
                Recommendation(
                    "warning",
                    "lifecycle_silent",
                    f"no lifecycle run since {latest.started_at:%Y-%m-%d %H:%M} UTC",
                )
            ]
        return []

    # ---- helpers -------------------------------------------------------------------

    def _tier(self, tier: TierName, buckets: list[BucketRecord]) -> TierStats:
        backend = self.settings.tier(tier).backend
        stored = sum(b.used_bytes for b in buckets)
        return TierStats(
            tier=tier.value,
            backend=backend.value,
            photos=sum(b.object_count for b in buckets),
            bytes=stored,
            buckets=len(buckets),
            capacity_bytes=sum(b.capacity_bytes for b in buckets),
            price_per_gb_month=self.settings.tier_price_per_gb_month(tier),
            # Each bucket at its own offer's price (HOT's serving buckets: R2's).
            monthly_cost=round(
                sum(
                    self.settings.tier_price_per_gb_month(tier, b.backend) * b.used_bytes / GB
                    for b in buckets
                ),
                6,
            ),
        )

    def _monthly(self, tier: TierName, size: int) -> float:
        return self.settings.tier_price_per_gb_month(tier) * size / GB


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0
