"""What keeping photos costs under each way of keeping them, month by month.

A workload (``Workload``) is drawn from a seed: uploads, their sizes, which are
published and when, when they are viewed. Each image's life (``Life``) is that future
plus the day the store deleted it, so every strategy deletes the same images on the
same day. A strategy is a sequence of stays (``Stay``) per image, each on one offer of
the price book (``shelflife.domain.pricebook``); ``price`` turns a life and its stays
into a bill:

- storage, every day of every stay (an offer's minimum size and minimum duration, S3
  Intelligent-Tiering's tiers by days since the last access and its monitoring fee);
- operations: the upload, ingest's read of it and its write of the compressed image,
  each move's read and write, each view's read, retrieval fees;
- egress: every byte that leaves a provider (AWS data transfer out also when ingest
  writes to R2 or B2, or a move goes there) and every byte served to a viewer;
- fixed: what the store's own stack costs whatever it keeps (``StackBill``).

The strategies (``one_offer``, ``oracle``; the store's own stays come from replaying
the real services, ``shelflife.simulation``):

- one offer for everything, compressed, the same deletions: what a user would do
  without the store (``s3_standard_uncompressed`` keeps the uploads as they are);
- ``oracle``: per image, knowing its whole future, the cheapest sequence of stays over
  every offer: a shortest path over (offer, day it arrived) at the days where a choice
  can pay (the upload, publishing, the last view of a day, and 30 and 90 days after
  those, where minimum durations and Intelligent-Tiering's tiers change), with moves,
  egress, retrieval and minimum durations priced as above.

Prices are list prices with no free allowance (an account's allowances are shared with
whatever else it runs, and a store that grows passes them), so the comparison is of
what each choice adds to a bill.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from shelflife.domain.pricebook import LEAN, Offer, PriceBook, Shape

GB = 1024**3
MB = 1024**2
MONTH_DAYS = 30
# Where uploads land and what ingest runs on: an S3 bucket and a Lambda function in AWS.
UPLOAD_OFFER = "s3_standard"
UNCOMPRESSED = "s3_standard_uncompressed"
ONE_OFFER = ("s3_standard", "s3_intelligent_tiering", "r2_standard", "b2")
CATEGORIES = ("storage", "operations", "egress", "fixed")
# Days after which an offer's price may change for an object left alone: minimum
# durations end (30 for Standard-IA and R2 Infrequent Access, 90 for Glacier Instant
# Retrieval) and Intelligent-Tiering moves it down a tier (30, 90).
TURNING_POINTS = (30.0, 90.0)


@dataclass(frozen=True)
class Workload:
    """The reference workload of the design, every number a knob."""

    months: int = 24
    uploads_per_month: int = 1000
    # The uploads' mean size; sizes spread log-normally around it.
    mean_size_mb: float = 2.0
    size_spread: float = 0.5
    publish_rate: float = 0.8
    # A published photo is published within this many days of its upload.
    publish_within_days: float = 10.0
    # Views of a published photo in its first week after publishing.
    views_per_photo: float = 0.0
    # Views of a photo never published, a month, while it is kept.
    draft_views_per_month: float = 0.0
    seed: int = 2026

    @property
    def days(self) -> float:
        return float(self.months * MONTH_DAYS)


@dataclass(frozen=True)
class Upload:
    """One image's future as the workload draws it; times in days from the start."""

    id: str
    uploaded: float
    original: int
    size: int
    published: float | None
    views: tuple[float, ...]


@dataclass(frozen=True)
class Life:
    upload: Upload
    # When the store deleted it; None while it is kept at the end of the horizon.
    deleted: float | None

    @property
    def end(self) -> float | None:
        return self.deleted

    def views_before(self, horizon: float) -> tuple[float, ...]:
        end = horizon if self.deleted is None else min(self.deleted, horizon)
        return tuple(v for v in self.upload.views if v < end)


@dataclass(frozen=True)
class Stay:
    offer: str
    start: float


def draw(workload: Workload, ratios: Sequence[float]) -> list[Upload]:
    """The workload's uploads. ``ratios`` are stored size / uploaded size as
    compression really gave them (measured on real photos); each upload gets one."""
    if not ratios or any(not 0 < r <= 1.5 for r in ratios):
        raise ValueError("compression ratios must be given, each in (0, 1.5]")
    rng = random.Random(workload.seed)
    sigma = workload.size_spread
    mu = math.log(workload.mean_size_mb * MB) - sigma * sigma / 2
    uploads: list[Upload] = []
    for month in range(workload.months):
        for _ in range(workload.uploads_per_month):
            uploaded = month * MONTH_DAYS + rng.uniform(0, MONTH_DAYS)
            original = max(1024, round(rng.lognormvariate(mu, sigma)))
            size = max(256, round(original * rng.choice(ratios)))
            published: float | None = None
            views: list[float] = []
            if rng.random() < workload.publish_rate:
                published = uploaded + rng.uniform(0, workload.publish_within_days)
                count = _poisson(rng, workload.views_per_photo)
                views = sorted(published + rng.uniform(0, 7) for _ in range(count))
            elif workload.draft_views_per_month > 0:
                rate = workload.draft_views_per_month / MONTH_DAYS
                at = uploaded + rng.expovariate(rate)
                while at < workload.days:
                    views.append(at)
                    at += rng.expovariate(rate)
            uploads.append(
                Upload(f"u{len(uploads):06d}", uploaded, original, size, published, tuple(views))
            )
    return sorted(uploads, key=lambda u: u.uploaded)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method for small means, a rounded normal for large)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def days_by_month(start: float, end: float, months: int) -> Iterator[tuple[int, float]]:
    """(month, days) of the span from ``start`` to ``end`` within the first ``months``."""
    start, end = max(0.0, start), min(end, months * MONTH_DAYS)
    while start < end:
        month = int(start // MONTH_DAYS)
        stop = min(end, (month + 1) * MONTH_DAYS)
        yield month, stop - start
        start = stop


@dataclass
class Bill:
    """USD by category and month (30-day months from the start)."""

    months: int
    rows: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for category in CATEGORIES:
            self.rows.setdefault(category, [0.0] * self.months)

    def add(self, category: str, day: float, usd: float) -> None:
        month = int(day // MONTH_DAYS)
        if 0 <= month < self.months:
            self.rows[category][month] += usd

    def spread(self, category: str, start: float, end: float, usd_per_day: float) -> None:
        """``usd_per_day`` every day from ``start`` to ``end``, split at month ends."""
        for month, days in days_by_month(start, end, self.months):
            self.rows[category][month] += usd_per_day * days

    def merge(self, other: Bill) -> None:
        for category, row in other.rows.items():
            for month, usd in enumerate(row):
                self.rows[category][month] += usd

    @property
    def monthly(self) -> list[float]:
        return [sum(self.rows[c][m] for c in CATEGORIES) for m in range(self.months)]

    def total(self, category: str | None = None) -> float:
        if category is None:
            return sum(self.monthly)
        return sum(self.rows[category])

    def steady(self, category: str | None = None) -> float:
        """The mean of the last 12 months (or of every month, if fewer)."""
        last = max(0, self.months - 12)
        months = range(last, self.months)
        rows = [self.rows[category]] if category else [self.rows[c] for c in CATEGORIES]
        return sum(row[m] for row in rows for m in months) / max(1, len(months))


class Pricer:
    """The book's prices applied to one image: what a write, a read, a move, a view and
    a stay cost."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book

    def offer(self, name: str) -> Offer:
        return self.book.offer(name)

    @staticmethod
    def _gb(size: int) -> float:
        return size / GB

    def transfer(self, source: Offer, destination: Offer, size: int) -> float:
        """Bytes leaving ``source``'s provider for ``destination``'s (nothing within
        one provider and region)."""
        if source.provider == destination.provider:
            return 0.0
        return source.egress_per_gb * self._gb(size)

    def ingest(self, offer: str, upload: Upload) -> tuple[float, float]:
        """(operations, egress) of one upload: the client's PUT into the upload bucket,
        ingest's GET of it and its write of the compressed image to ``offer``, from
        AWS (so to R2 or B2 it pays AWS data transfer out)."""
        landing, target = self.offer(UPLOAD_OFFER), self.offer(offer)
        operations = landing.write_per_request + landing.read_per_request
        operations += target.write_per_request
        return operations, self.transfer(landing, target, upload.size)

    def move(self, source: str, destination: str, size: int) -> tuple[float, float]:
        src, dst = self.offer(source), self.offer(destination)
        operations = src.read_per_request + dst.write_per_request
        operations += src.retrieval_per_gb * self._gb(size)
        return operations, self.transfer(src, dst, size)

    def view(self, offer: str, size: int) -> tuple[float, float]:
        """(operations, egress) of serving the image once to a viewer on the internet."""
        o = self.offer(offer)
        operations = o.read_per_request + o.retrieval_per_gb * self._gb(size)
        return operations, o.egress_per_gb * self._gb(size)

    def stay(
        self,
        offer: str,
        size: int,
        start: float,
        end: float,
        views: Sequence[float],
        *,
        ended: bool,
        bill: Bill | None = None,
    ) -> float:
        """Storage of ``size`` bytes on ``offer`` from ``start`` to ``end`` (views at
        ``views`` reset Intelligent-Tiering's clock); ``ended``: a move or a deletion
        ends the stay there (a minimum duration is then paid in full). Added to
        ``bill`` when given; the total is returned."""
        o = self.offer(offer)
        billable = self._gb(max(size, o.min_object_bytes))
        total = 0.0
        if o.infrequent_per_gb_month is not None and size >= (o.monitored_min_bytes or 0):
            total += self._tiered(o, billable, start, end, views, bill)
            fee = (o.monitoring_per_1000_objects_month or 0.0) / 1000 / MONTH_DAYS
            total += fee * (end - start)
            if bill is not None:
                bill.spread("storage", start, end, fee)
        else:
            rate = o.storage_per_gb_month * billable / MONTH_DAYS
            total += rate * (end - start)
            if bill is not None:
                bill.spread("storage", start, end, rate)
        if ended and end - start < o.min_days:
            short = o.storage_per_gb_month * billable / MONTH_DAYS * (o.min_days - (end - start))
            total += short
            if bill is not None:
                bill.add("storage", end, short)
        return total

    @staticmethod
    def _tiered(
        o: Offer,
        billable: float,
        start: float,
        end: float,
        views: Sequence[float],
        bill: Bill | None,
    ) -> float:
        """Intelligent-Tiering: Frequent until ``infrequent_after_days`` without access,
        Infrequent until ``archive_instant_after_days``, Archive Instant after."""
        assert o.infrequent_per_gb_month is not None
        steps = (
            (0.0, o.storage_per_gb_month),
            (float(o.infrequent_after_days or 0), o.infrequent_per_gb_month),
            (float(o.archive_instant_after_days or 0), o.archive_instant_per_gb_month or 0.0),
        )
        accesses = [start, *(v for v in views if start < v < end), end]
        total = 0.0
        for since, until in itertools.pairwise(accesses):
            for index, (after, per_gb) in enumerate(steps):
                lo = since + after
                hi = since + steps[index + 1][0] if index + 1 < len(steps) else until
                lo, hi = max(lo, since), min(hi, until)
                if hi <= lo:
                    continue
                rate = per_gb * billable / MONTH_DAYS
                total += rate * (hi - lo)
                if bill is not None:
                    bill.spread("storage", lo, hi, rate)
        return total


def price(pricer: Pricer, life: Life, stays: Sequence[Stay], horizon: float, bill: Bill) -> None:
    """Add one image's bill under ``stays`` (the first at its upload) to ``bill``."""
    upload = life.upload
    if not stays or stays[0].start != upload.uploaded:
        raise ValueError(f"{upload.id}: the first stay starts at the upload")
    end = horizon if life.deleted is None else min(life.deleted, horizon)
    views = life.views_before(horizon)
    operations, egress = pricer.ingest(stays[0].offer, upload)
    bill.add("operations", upload.uploaded, operations)
    bill.add("egress", upload.uploaded, egress)
    for index, stay in enumerate(stays):
        stop = stays[index + 1].start if index + 1 < len(stays) else end
        ended = index + 1 < len(stays) or life.deleted is not None
        pricer.stay(
            stay.offer,
            upload.size,
            stay.start,
            stop,
            views,
            ended=ended and stop <= end,
            bill=bill,
        )
        if index + 1 < len(stays):
            nxt = stays[index + 1]
            operations, egress = pricer.move(stay.offer, nxt.offer, upload.size)
            bill.add("operations", nxt.start, operations)
            bill.add("egress", nxt.start, egress)
    starts = [stay.start for stay in stays]
    for seen in views:
        where = stays[max(0, bisect.bisect_right(starts, seen) - 1)].offer
        operations, egress = pricer.view(where, upload.size)
        bill.add("operations", seen, operations)
        bill.add("egress", seen, egress)


def cost(pricer: Pricer, life: Life, stays: Sequence[Stay], horizon: float) -> float:
    """What ``price`` would add, as one number."""
    bill = Bill(max(1, math.ceil(horizon / MONTH_DAYS)))
    price(pricer, life, stays, horizon, bill)
    return bill.total()


def price_uncompressed(pricer: Pricer, life: Life, horizon: float, bill: Bill) -> None:
    """What a user has without the store: the upload itself kept on S3 Standard."""
    upload = life.upload
    end = horizon if life.deleted is None else min(life.deleted, horizon)
    o = pricer.offer("s3_standard")
    bill.add("operations", upload.uploaded, o.write_per_request)
    pricer.stay("s3_standard", upload.original, upload.uploaded, end, (), ended=False, bill=bill)
    for seen in life.views_before(horizon):
        operations, egress = pricer.view("s3_standard", upload.original)
        bill.add("operations", seen, operations)
        bill.add("egress", seen, egress)


def one_offer(pricer: Pricer, lives: Iterable[Life], offer: str, months: int) -> Bill:
    bill, horizon = Bill(months), months * MONTH_DAYS
    for life in lives:
        if offer == UNCOMPRESSED:
            price_uncompressed(pricer, life, horizon, bill)
        else:
            price(pricer, life, [Stay(offer, life.upload.uploaded)], horizon, bill)
    return bill


def choices(life: Life, horizon: float) -> list[float]:
    """The days at which the oracle considers a move (see the module's docstring)."""
    upload = life.upload
    end = horizon if life.deleted is None else min(life.deleted, horizon)
    base = {upload.uploaded}
    if upload.published is not None and upload.published < end:
        base.add(upload.published)
    by_day: dict[int, float] = {}
    for seen in life.views_before(horizon):
        by_day[int(seen)] = max(by_day.get(int(seen), seen), seen)
    base |= set(by_day.values())
    points = set(base)
    for point in base:
        points |= {point + later for later in TURNING_POINTS}
    return sorted(p for p in points if upload.uploaded <= p < end)


def cheapest(
    pricer: Pricer, life: Life, horizon: float, offers: Sequence[str]
) -> tuple[float, list[Stay]]:
    """The cheapest stays for ``life`` over ``offers``, moving only at ``choices``:
    a shortest path where arriving on offer ``o`` at choice ``k`` costs the best way to
    be somewhere before plus that stay plus the move."""
    upload = life.upload
    end = horizon if life.deleted is None else min(life.deleted, horizon)
    points = choices(life, horizon)
    views = life.views_before(horizon)
    n = len(points)
    view_cost = {o: sum(pricer.view(o, upload.size)) for o in offers}

    def segment(o: str, k: int, j: int | None) -> float:
        """Staying on ``o`` from choice ``k`` to choice ``j`` (None: to the end)."""
        start = points[k]
        stop = end if j is None else points[j]
        ended = j is not None or life.deleted is not None
        cost = pricer.stay(o, upload.size, start, stop, views, ended=ended)
        seen = bisect.bisect_left(views, stop) - bisect.bisect_left(views, start)
        return cost + seen * view_cost[o]

    move = {(a, b): sum(pricer.move(a, b, upload.size)) for a in offers for b in offers}
    # arrive[k][o]: the cheapest way to be on o from choice k on, everything before paid.
    arrive: list[dict[str, tuple[float, tuple[int, str] | None]]] = [{} for _ in range(n)]
    for o in offers:
        arrive[0][o] = (sum(pricer.ingest(o, upload)), None)
    best: tuple[float, tuple[int, str]] | None = None
    for k in range(n):
        for o, (cost, _) in arrive[k].items():
            whole = cost + segment(o, k, None)
            if best is None or whole < best[0]:
                best = (whole, (k, o))
            for j in range(k + 1, n):
                leave = cost + segment(o, k, j)
                for d in offers:
                    if d == o:
                        continue
                    total = leave + move[(o, d)]
                    if d not in arrive[j] or total < arrive[j][d][0]:
                        arrive[j][d] = (total, (k, o))
    assert best is not None
    stays: list[Stay] = []
    at: tuple[int, str] | None = best[1]
    while at is not None:
        k, o = at
        stays.append(Stay(o, points[k]))
        at = arrive[k][o][1]
    return best[0], stays[::-1]


def oracle(
    pricer: Pricer,
    lives: Iterable[Life],
    months: int,
    offers: Sequence[str] | None = None,
    also: Mapping[str, Sequence[Stay]] | None = None,
) -> tuple[Bill, dict[str, list[Stay]]]:
    """Every image on its cheapest stays (``cheapest``), memoised by what decides them
    (size, the offsets of its future from its upload), so alike images cost one search.
    ``also``: stays another strategy chose per image id; where one is cheaper than the
    search found (it moved between the search's choice points), the oracle takes it, so
    the oracle is never above that strategy."""
    names = list(offers or pricer.book.offers)
    bill, horizon = Bill(months), months * MONTH_DAYS
    chosen: dict[str, list[Stay]] = {}
    memo: dict[tuple[object, ...], list[tuple[str, float]]] = {}
    for life in lives:
        u = life.upload
        end = horizon if life.deleted is None else min(life.deleted, horizon)
        key = (
            u.size,
            round(end - u.uploaded, 4),
            life.deleted is None,
            None if u.published is None else round(u.published - u.uploaded, 4),
            tuple(round(v - u.uploaded, 4) for v in life.views_before(horizon)),
            # Months matter only where a stay's storage is split (not its total).
        )
        if key not in memo:
            _, stays = cheapest(pricer, life, horizon, names)
            memo[key] = [(s.offer, s.start - u.uploaded) for s in stays]
        stays = [Stay(o, u.uploaded + offset) for o, offset in memo[key]]
        stays[0] = Stay(stays[0].offer, u.uploaded)
        other = list((also or {}).get(u.id, ()))
        if other and cost(pricer, life, other, horizon) < cost(pricer, life, stays, horizon):
            stays = other
        chosen[u.id] = stays
        price(pricer, life, stays, horizon, bill)
    return bill, chosen


@dataclass(frozen=True)
class Activity:
    """What the store's own functions did in a month, to price its stack."""

    uploads: int = 0
    # Requests for a published photo's URL through the API (a client keeps a URL for
    # the day, so a day's other views are served by the bucket alone).
    views: int = 0
    # Moves within a provider (a server-side copy: TEMP -> HOT, HOT -> Glacier IR).
    moves: int = 0
    deletions: int = 0
    # Promotions in place (TEMP and HOT on one offer): a record's write, no copy.
    relabels: int = 0
    # The API's requests to the lifecycle to serve photos it published (the moves
    # themselves are ``transfers``).
    serves: int = 0
    # Moves between providers: the bytes streamed through the function (S3 -> R2).
    transfers: int = 0
    # Photos published through the API.
    publishes: int = 0
    # Requests for a draft's URL (its record's access is written).
    draft_views: int = 0
    # Days the table held an image's record in the month (summed over images): while
    # the image is kept, and after its deletion until the TTL removes the record.
    record_days: float = 0.0
    deleted_record_days: float = 0.0


def record_days(
    lives: Iterable[Life], months: int, kept_after_deletion: float
) -> dict[int, tuple[float, float]]:
    """Per month, the days image records were held (``Activity.record_days``) and the
    days deleted ones were kept (``deleted_record_days``)."""
    held = {month: [0.0, 0.0] for month in range(months)}
    horizon = months * MONTH_DAYS
    for life in lives:
        end = horizon if life.deleted is None else life.deleted
        for month, days in days_by_month(life.upload.uploaded, end, months):
            held[month][0] += days
        if life.deleted is not None:
            kept = days_by_month(life.deleted, life.deleted + kept_after_deletion, months)
            for month, days in kept:
                held[month][1] += days
    return {month: (live, deleted) for month, (live, deleted) in held.items()}


def _table_storage(book: PriceBook, record_bytes: float) -> float:
    """USD a day of keeping ``record_bytes`` in the table."""
    return record_bytes / GB * book.compute.table_storage_per_gb_month / MONTH_DAYS


def _audit_entries(book: PriceBook, done: Activity) -> float:
    """Entries the month's events add to the audit trail."""
    use = book.stack
    return (
        done.uploads * use.upload.audit_entries
        + done.moves * use.move.audit_entries
        + done.transfers * use.transfer.audit_entries
        + done.relabels * use.relabel.audit_entries
        + done.deletions * use.deletion.audit_entries
        + done.publishes * use.publish.audit_entries
        + done.views * use.view.audit_entries
        + done.draft_views * use.draft_view.audit_entries
    )


def _work(book: PriceBook, done: Activity, shape: Shape) -> float:
    use = book.stack
    usd = done.uploads * book.compute_cost(use.upload, shape)
    usd += done.moves * book.compute_cost(use.move, shape)
    usd += done.transfers * book.compute_cost(use.transfer, shape)
    usd += done.relabels * book.compute_cost(use.relabel, shape)
    usd += done.serves * book.compute_cost(use.serve, shape)
    usd += done.deletions * book.compute_cost(use.deletion, shape)
    usd += done.publishes * book.compute_cost(use.publish, shape)
    usd += done.views * book.compute_cost(use.view, shape)
    usd += done.draft_views * book.compute_cost(use.draft_view, shape)
    usd += _audit_entries(book, done) * book.compute_cost(use.audit_entry, shape)
    return usd


def stack_bill(
    book: PriceBook, activity: Mapping[int, Activity], months: int, shape: Shape = LEAN
) -> Bill:
    """The store's own bill: the fixed monthly costs and scheduled runs of a stack of
    ``shape``, what each upload, view (through the API), publish, move and deletion
    makes its functions, table and API do (the book's ``[compute]`` prices, its
    ``[stack]`` uses), and the table's storage of its records."""
    bill = Bill(months)
    fixed = book.stack_fixed_monthly(shape)
    for month in range(months):
        bill.add("fixed", month * MONTH_DAYS, fixed)
        done = activity.get(month, Activity())
        bill.add("operations", month * MONTH_DAYS, _work(book, done, shape))
        kept = done.record_days * _table_storage(book, book.stack.record_bytes)
        kept += done.deleted_record_days * _table_storage(book, book.stack.deleted_record_bytes)
        # An entry is kept for the retention from the day it is written: its whole
        # keep is billed then.
        entry_days = _audit_entries(book, done) * book.stack.audit_retention_days
        kept += entry_days * _table_storage(book, book.stack.audit_entry_bytes)
        bill.add("storage", month * MONTH_DAYS, kept)
    return bill


def pipeline_bill(
    book: PriceBook,
    activity: Mapping[int, Activity],
    months: int,
    *,
    credentials: bool = False,
) -> Bill:
    """What a one-offer strategy needs to compress its uploads and delete on the same
    days as the store: a function run per upload, publish and deletion with the
    leanest record it needs (the book's ``[pipeline]``) and a daily sweep, and,
    writing to R2 or B2 from AWS (``credentials``), the same keys' store as the
    store's; nothing else (no capacity checks, alarms or metrics; views go straight to
    the bucket). Compressed one-offer strategies pay it; ``s3_standard_uncompressed``
    does not."""
    bill = Bill(months)
    sweep = book.stack.lifecycle
    keys = sum(
        item.monthly_usd * item.count
        for item in book.fixed.values()
        if item.when == "credentials" and credentials
    )
    use = book.pipeline
    for month in range(months):
        fixed = sweep.per_month * book.compute_cost(sweep) + keys
        bill.add("fixed", month * MONTH_DAYS, fixed)
        done = activity.get(month, Activity())
        work = done.uploads * book.compute_cost(use.upload)
        work += done.publishes * book.compute_cost(use.publish)
        work += done.deletions * book.compute_cost(use.deletion)
        bill.add("operations", month * MONTH_DAYS, work)
        kept = done.record_days * _table_storage(book, use.record_bytes)
        bill.add("storage", month * MONTH_DAYS, kept)
    return bill
