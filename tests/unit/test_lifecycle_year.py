"""A simulated year under the default policy, as in the seeds' example: 1,000 uploads a
month, 80 % of them published 0-10 days after upload, the lifecycle at 03:00 UTC every
day, the cleanup function following the stream. At every day boundary each image is
where the policy says, by an oracle written from the policy's text (not from the
engine); at the end the monthly storage cost is printed against keeping everything in
HOT (`pytest -s tests/unit/test_lifecycle_year.py` shows it).
"""

from __future__ import annotations

import calendar
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shelflife.domain.costs import CostModel
from shelflife.domain.policy import published
from shelflife.domain.records import ImageRecord, ImageState
from shelflife.domain.settings import BackendName, TierName
from tests.support.lifecycle import World

START = datetime(2026, 1, 1, tzinfo=UTC)
UPLOADS_PER_MONTH = 1000
PUBLISHED_SHARE = 0.8
# What a compressed photo weighs (the ingest benchmark's median is 90-450 KB); the
# simulation stores small objects and prices this size.
PRICED_SIZE = 400_000
# Where each tier lives by default, for the prices.
TIER_BACKENDS = {
    TierName.TEMP: BackendName.S3,
    TierName.HOT: BackendName.S3,
    TierName.COLD: BackendName.B2,
}
DAY = timedelta(days=1)


def next_sweep(after: datetime) -> datetime:
    run = after.replace(hour=3, minute=0, second=0, microsecond=0)
    return run if run >= after else run + DAY


@dataclass
class Planned:
    uploaded_at: datetime
    published_at: datetime | None
    record: ImageRecord | None = None
    gone: bool = False

    def expected(self, at: datetime) -> TierName | None:
        """Where the policy's text puts this image at ``at`` (None: deleted), with a
        sweep at 03:00 every day: TEMP for 48 hours; then HOT, unless published (a
        published image stays put); deleted at the first sweep 7 days after publishing;
        COLD after 90 days without access; deleted 365 days after arriving in COLD."""
        promoted = next_sweep(self.uploaded_at + timedelta(hours=48))
        if self.published_at is not None:
            if at >= next_sweep(self.published_at + timedelta(days=7)):
                return None
            if self.published_at < promoted:
                return TierName.TEMP
        if at < promoted:
            return TierName.TEMP
        archived = next_sweep(self.uploaded_at + timedelta(days=90))
        if at < archived:
            return TierName.HOT
        return None if at >= next_sweep(archived + timedelta(days=365)) else TierName.COLD


def plan(rng: random.Random) -> list[Planned]:
    planned = []
    for month in range(1, 13):
        days = calendar.monthrange(START.year, month)[1]
        first = START.replace(month=month)
        for _ in range(UPLOADS_PER_MONTH):
            uploaded = first + timedelta(seconds=rng.uniform(0, days * 86400))
            publish = None
            if rng.random() < PUBLISHED_SHARE:
                publish = uploaded + timedelta(seconds=rng.uniform(0, 10 * 86400))
            planned.append(Planned(uploaded, publish))
    return sorted(planned, key=lambda p: p.uploaded_at)


def test_a_year_of_uploads_is_where_the_policy_says_every_day() -> None:
    world = World()
    planned = plan(random.Random(2026))
    costs = CostModel(world.settings)
    events = sorted(
        [(p.uploaded_at, "upload", p) for p in planned]
        + [(p.published_at, "publish", p) for p in planned if p.published_at is not None],
        key=lambda event: event[0],
    )
    monthly: dict[int, float] = dict.fromkeys(range(1, 13), 0.0)
    all_hot: dict[int, float] = dict.fromkeys(range(1, 13), 0.0)
    tiers_at_month_end: dict[int, Counter[str]] = {}
    mismatches: list[str] = []
    day, position = START, 0
    year_end = START.replace(year=START.year + 1)
    while day < year_end:
        sweep_at, tomorrow = day.replace(hour=3), day + DAY
        for moment in (sweep_at, tomorrow):
            while position < len(events) and events[position][0] < moment:
                when, kind, item = events[position]
                world.now = when
                if kind == "upload":
                    item.record = world.upload(age=timedelta(0))
                else:
                    assert item.record is not None
                    world.change(item.record, published)
                position += 1
            if moment == sweep_at:
                world.now = sweep_at
                world.sweep()
        # The day boundary: every image where the oracle says. Deletion is final, so an
        # image both say is gone is not looked at again.
        stored: Counter[str] = Counter()
        for item in planned:
            if item.record is None or item.gone:
                continue
            current = world.repository.get_image(item.record.id)
            actual = current.location.tier if current.live and current.location else None
            expected = item.expected(tomorrow)
            if (
                current.state not in (ImageState.ACTIVE, ImageState.DELETED)
                or actual is not expected
            ):
                mismatches.append(
                    f"{tomorrow:%Y-%m-%d} {current.id}: {current.state} in {actual},"
                    f" expected in {expected}"
                )
            if actual is None:
                item.gone = expected is None
            else:
                stored[actual.value] += 1
        monthly[day.month] += sum(
            count * costs.provider(TIER_BACKENDS[TierName(tier)]).storage(PRICED_SIZE, 1)
            for tier, count in stored.items()
        )
        uploaded = sum(item.record is not None for item in planned)
        all_hot[day.month] += uploaded * costs.provider(BackendName.S3).storage(PRICED_SIZE, 1)
        tiers_at_month_end[day.month] = stored
        assert not mismatches, mismatches[:10]
        day = tomorrow
    world.assert_consistent()

    lines = ["month  temp   hot  cold  lifecycle USD  all in HOT USD  ratio"]
    for month in range(1, 13):
        tiers = tiers_at_month_end[month]
        lines.append(
            f"{month:5d} {tiers['temp']:5d} {tiers['hot']:5d} {tiers['cold']:5d}"
            f" {monthly[month]:14.4f} {all_hot[month]:15.4f} {monthly[month] / all_hot[month]:6.3f}"
        )
    print("\n".join(lines))
    # Deleting published images within a week keeps the store a fraction of keeping all.
    assert all(monthly[m] < all_hot[m] for m in range(2, 13))
    assert sum(monthly.values()) < 0.35 * sum(all_hot.values())
