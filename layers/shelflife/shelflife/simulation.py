"""``shelflife simulate``: a workload replayed day by day through the store's real
services, then every strategy priced on the same events.

The replay is the store as it runs: each upload placed by ``Placement`` into TEMP and
recorded as ingest records it (``policy.scheduled``, with the learned settings ingest
reads once a day), publishing through the API's
service (``PhotoService.publish``, which also counts the photo's age for what the
lifecycle learns), views asked for as the API's URL route asks (``PhotoService.url``), the
lifecycle
(``LifecycleService``) run at 03:00 every day, then what it queued for itself (a
reschedule when the learned archive day shortens), and the cleanup function
(``CleanupService``) following the table's change feed, all on in-memory adapters with
the clock moved. The feed tells where each image was stored when (its stays) and when
the store deleted it; ``shelflife.domain.economics`` prices those stays, the same lives
under one offer each, and the oracle's cheapest stays.

Uploads are stored as zero bytes of their compressed size (sizes and checksums are
what the services look at; pixels are not). Quotas are set beyond the workload so the
capacity function never has to act: it is priced (at the template's default rate) but not replayed.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shelflife.adapters.backends import MemoryBackend, ProviderBackends, StorageBackend
from shelflife.adapters.queues import MemoryQueue
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.domain import economics
from shelflife.domain.auth import Caller
from shelflife.domain.economics import (
    MONTH_DAYS,
    ONE_OFFER,
    UNCOMPRESSED,
    Activity,
    Bill,
    Life,
    Pricer,
    Stay,
    Upload,
    Workload,
)
from shelflife.domain.policy import scheduled
from shelflife.domain.pricebook import PriceBook, Shape, book
from shelflife.domain.records import ImageRecord, Location
from shelflife.domain.requests import lifecycle_request
from shelflife.domain.settings import BackendName, Settings, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.domain.tuning import DailyTuned
from shelflife.services.cleanup import CleanupService
from shelflife.services.lifecycle import LifecycleService
from shelflife.services.photos import PhotoService

START = datetime(2026, 1, 1, tzinfo=UTC)
SWEEP_HOUR = 3 / 24  # the lifecycle's schedule: 03:00 UTC
# Far beyond any workload: capacity is priced, not replayed (see the module).
UNLIMITED = 1024**5
# Compressed / uploaded size, measured by running ``compress`` on the corpus's
# ``photos`` and ``camera`` sets (``make economics`` measures them again and uses its
# own figures); a default for when the corpus is not at hand.
MEASURED_RATIOS = (0.539, 0.352, 0.788, 0.48, 0.471, 0.446, 0.757, 0.467, 0.422)
STRATEGIES = (
    UNCOMPRESSED,
    "s3_standard",
    "s3_intelligent_tiering",
    "r2",
    "b2",
    "shelflife",
    "oracle",
)
NAMES = {"r2_standard": "r2"}
OWNER = "simulated"  # the short names for the one-offer strategies


# The serving buckets the ``shelflife`` strategy has: R2, which assumes an account
# there, as the ``r2`` and ``b2`` strategies do (the template's ServeBackend=r2; its
# default, none, keeps every byte on AWS: ``serve=None``).
SERVE = {"backend": "r2", "bucket": "sim-serve", "quota_bytes": UNLIMITED}


def default_settings(**overrides: Any) -> Settings:
    """The store's defaults (TEMP and HOT on S3, COLD on S3 Glacier Instant Retrieval,
    the policy's days, what it learns) with published photos served from R2 when
    their views pay (``SERVE``), with ``overrides`` (a tier's given as a dict of its
    settings: ``hot={"backend": "r2"}``; ``serve=None``: no serving buckets)."""
    tiers: dict[str, dict[str, Any] | None] = {
        tier.value: {"backend": "s3", "bucket": f"sim-{tier.value}", "quota_bytes": UNLIMITED}
        for tier in TierName
    }
    tiers["serve"] = dict(SERVE)
    for name in list(overrides):
        if name in tiers:
            given = overrides.pop(name)
            current = tiers[name]
            tiers[name] = None if given is None else {**(current or {}), **given}
    return Settings.from_env(
        {}, table_name="shelflife-simulation", lifecycle_workers=1, **tiers, **overrides
    )


@dataclass
class Replay:
    """What the store did with a workload: each image's life and stays, and its
    functions' work by month."""

    lives: list[Life]
    stays: dict[str, list[Stay]]
    activity: dict[int, Activity]


@dataclass
class _Tracker:
    """Follows the table's change feed into stays and deletions."""

    prices: PriceBook
    settings: Settings
    uploads: dict[str, Upload]
    stays: dict[str, list[Stay]] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    where: dict[str, Location] = field(default_factory=dict)
    done: dict[int, Counter[str]] = field(default_factory=dict)

    def count(self, day: float, what: str) -> None:
        self.done.setdefault(int(day // MONTH_DAYS), Counter())[what] += 1

    def follow(
        self, stream: Sequence[tuple[ImageRecord | None, ImageRecord | None]], day: float
    ) -> None:
        for old, new in stream:
            if new is None or new.id not in self.uploads or new.id in self.deleted:
                continue
            if new.promoted_at is not None and (old is None or old.promoted_at is None):
                self.count(day, "relabels")  # promoted in place: the same stay goes on
            if not new.live or new.location is None:
                if new.id in self.where:
                    self.deleted[new.id] = day
                    self.count(day, "deletions")
                continue
            before = self.where.get(new.id)
            if before == new.location:
                continue
            self.where[new.id] = new.location
            # The offer its buckets write to (COLD on S3: Glacier Instant Retrieval;
            # HOT's serving buckets: theirs).
            offer = (
                self.settings.offer_name(new.location.tier, new.location.backend)
                or self.prices.backends[new.location.backend.value]
            )
            if before is None:
                self.stays[new.id] = [Stay(offer, self.uploads[new.id].uploaded)]
            else:
                last = self.stays[new.id][-1].offer
                across = self.prices.offer(last).provider != self.prices.offer(offer).provider
                self.stays[new.id].append(Stay(offer, day))
                self.count(day, "transfers" if across else "moves")


def replay(
    workload: Workload,
    ratios: Sequence[float] = MEASURED_RATIOS,
    *,
    settings: Settings | None = None,
    prices: PriceBook | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Replay:
    """Run ``workload`` through the real services; ``progress(day, days)`` after each
    day's sweep."""
    settings = settings or default_settings()
    prices = prices or book()
    uploads = economics.draw(workload, ratios)
    by_id = {u.id: u for u in uploads}
    store = MemoryBackend()
    stores: dict[str, StorageBackend] = {name.value: store for name in BackendName}
    backends = ProviderBackends(settings, given=stores)
    repository = MemoryRepository()
    now = START

    def clock() -> datetime:
        return now

    # The continuation queue: what the lifecycle asks of itself (a reschedule when the
    # learned archive day shortens) is delivered after each day's sweep.
    queue = MemoryQueue()
    lifecycle = LifecycleService(settings, repository, backends, clock=clock, continuations=queue)
    # Ingest schedules a new record with the settings the sweep applies (learned ones).
    tuned = DailyTuned(settings, repository, clock)
    cleanup = CleanupService(repository, backends)
    photos = PhotoService(settings, repository, backends, clock=clock)
    owner = Caller(OWNER)
    for tier, backend in settings.shelves():
        shelf = settings.shelf(tier, backend)
        store.create_bucket(shelf.bucket, BucketPolicy(tier=tier.value))
        lifecycle.placement.buckets(tier, backend)
    tracker = _Tracker(prices, settings, by_id)
    events: list[tuple[float, int, str, Upload | None]] = []
    for u in uploads:
        events.append((u.uploaded, 1, "upload", u))
        if u.published is not None:
            events.append((u.published, 2, "publish", u))
        # One request to the API a day a published photo is viewed: the client asks
        # for its URL and keeps it for the day (a published photo's URL lasts a day:
        # ``Settings.published_url_expiry_seconds``); the day's other views go straight
        # to the bucket. A draft's URL lasts minutes: one request a view.
        if u.published is None:
            events.extend((seen, 3, "view", u) for seen in u.views)
            continue
        first: dict[int, float] = {}
        for seen in u.views:
            first.setdefault(int(seen), seen)
        events.extend((seen, 3, "view", u) for seen in first.values())
    events.extend((day + SWEEP_HOUR, 0, "sweep", None) for day in range(int(workload.days)))
    events.sort(key=lambda e: (e[0], e[1]))

    def drain(at: float) -> None:
        """The cleanup function and the tracker follow the feed; then it is dropped
        (a long replay would otherwise hold every version of every record)."""
        for old, new in repository.stream:
            cleanup.release(old, new)
        tracker.follow(repository.stream, at)
        repository.stream.clear()

    for at, _, kind, upload in events:
        if at >= workload.days:
            break
        now = START + timedelta(days=at)
        if kind == "sweep":
            lifecycle.sweep(lifecycle_request({"action": "run"}), _unhurried)
            while messages := queue.receive(10):
                for message in messages:
                    lifecycle.sweep(lifecycle_request(json.loads(message.body)), _unhurried)
                    queue.delete(message)
            drain(at)
            if progress is not None:
                progress(int(at) + 1, int(workload.days))
            continue
        assert upload is not None
        if kind == "upload":
            _upload(repository, lifecycle, store, tuned.settings, upload, now)
            tracker.count(at, "uploads")
        elif kind == "publish":
            # Each upload is a draft of its own (the workload publishes photo by photo).
            published = photos.publish(owner, upload.id, [upload.id])
            tracker.count(at, "publishes")
            if published.to_serve:
                # The API's asynchronous request to the lifecycle, run at once.
                lifecycle.serve(published.to_serve)
                tracker.count(at, "serves")
        else:
            image = repository.find_image(upload.id)
            if image is None or not image.live:
                continue
            # The API's URL route: the access recorded, a published photo's view-day
            # counted (what serving it from R2 is decided on), the URL signed.
            photos.url(owner, upload.id)
            tracker.count(at, "views" if image.published_at is not None else "draft_views")
        drain(at)
    lives = [Life(u, tracker.deleted.get(u.id)) for u in uploads]
    held = economics.record_days(lives, workload.months, settings.deleted_record_days)
    activity = {
        month: Activity(
            uploads=done["uploads"],
            views=done["views"],
            moves=done["moves"],
            transfers=done["transfers"],
            deletions=done["deletions"],
            relabels=done["relabels"],
            serves=done["serves"],
            publishes=done["publishes"],
            draft_views=done["draft_views"],
            record_days=held[month][0],
            deleted_record_days=held[month][1],
        )
        for month in range(workload.months)
        for done in [tracker.done.get(month, Counter())]
    }
    return Replay(lives, tracker.stays, activity)


def _unhurried() -> int:
    """The time left to a simulated invocation, in ms: always plenty."""
    return 10**9


def _upload(
    repository: MemoryRepository,
    lifecycle: LifecycleService,
    store: StorageBackend,
    settings: Settings,
    upload: Upload,
    now: datetime,
) -> None:
    """What ingest leaves behind for one upload: its compressed bytes in the least-full
    TEMP bucket and an active, scheduled record."""
    data = bytes(upload.size)
    digest = sha256_hex(data)
    bucket = lifecycle.placement.choose(TierName.TEMP, upload.size)
    key = f"images/{upload.id}/{digest}.jpg"
    store.put(bucket.name, key, data, content_type="image/jpeg")
    record = ImageRecord.model_validate(
        {
            "id": upload.id,
            "owner": OWNER,
            "draft_id": upload.id,
            "location": Location(
                tier=TierName.TEMP,
                backend=settings.tier(TierName.TEMP).backend,
                bucket=bucket.name,
                key=key,
            ),
            "stored_size": upload.size,
            "stored_sha256": digest,
            "uploaded_at": now,
            "placed_at": now,
        }
    )
    repository.add_image(scheduled(record, settings))


@dataclass(frozen=True)
class Outcome:
    """One strategy's bill, and the same without the stack's own costs."""

    bill: Bill
    placement: Bill

    def as_json(self) -> dict[str, Any]:
        b = self.bill
        return {
            "monthly_usd": [round(usd, 6) for usd in b.monthly],
            "steady_monthly_usd": round(b.steady(), 6),
            **{f"{c}_usd": round(b.steady(c), 6) for c in economics.CATEGORIES},
            "placement_steady_monthly_usd": round(self.placement.steady(), 6),
        }


def shape_of(settings: Settings, *, full_monitoring: bool = False) -> Shape:
    """The stack a deployment with ``settings`` runs: the keys' parameter when a tier
    is on R2 or B2; full monitoring only when asked for (the template's default
    is lean)."""
    shape = settings.stack_shape()
    return replace(shape, full_monitoring=shape.full_monitoring or full_monitoring)


def strategies(
    done: Replay,
    months: int,
    prices: PriceBook | None = None,
    *,
    shape: Shape | None = None,
) -> dict[str, Outcome]:
    """Every strategy priced on the replay's lives. One-offer strategies pay what
    compressing and deleting takes (``pipeline_bill``); the store and the oracle pay the
    store's stack (``stack_bill``), the oracle with its own count of moves."""
    prices = prices or book()
    shape = shape or shape_of(default_settings())
    pricer = Pricer(prices)
    horizon = months * MONTH_DAYS
    out: dict[str, Outcome] = {}
    for offer in (UNCOMPRESSED, *ONE_OFFER):
        placement = economics.one_offer(pricer, done.lives, offer, months)
        bill = Bill(months)
        bill.merge(placement)
        if offer != UNCOMPRESSED:
            # Writing to R2 or B2 from AWS needs their keys, stored as the store stores them.
            keys = prices.offer(offer).provider != "aws"
            bill.merge(economics.pipeline_bill(prices, done.activity, months, credentials=keys))
        out[NAMES.get(offer, offer)] = Outcome(bill, placement)
    placement = Bill(months)
    for life in done.lives:
        economics.price(pricer, life, done.stays[life.upload.id], horizon, placement)
    bill = Bill(months)
    bill.merge(placement)
    bill.merge(economics.stack_bill(prices, done.activity, months, shape))
    out["shelflife"] = Outcome(bill, placement)
    best, chosen = economics.oracle(pricer, done.lives, months, also=done.stays)
    moves: Counter[int] = Counter()
    transfers: Counter[int] = Counter()
    for stays in chosen.values():
        for before, stay in itertools.pairwise(stays):
            across = prices.offer(before.offer).provider != prices.offer(stay.offer).provider
            (transfers if across else moves)[int(stay.start // MONTH_DAYS)] += 1
    activity = {
        month: replace(a, moves=moves[month], transfers=transfers[month], relabels=0, serves=0)
        for month, a in done.activity.items()
    }
    bill = Bill(months)
    bill.merge(best)
    bill.merge(economics.stack_bill(prices, activity, months, shape))
    out["oracle"] = Outcome(bill, best)
    return out
