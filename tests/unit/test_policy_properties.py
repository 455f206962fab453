"""Properties of the lifecycle policy under the defaults, checked on the real sweep
(daily at 03:00, on the in-memory twins) over random lives of one image: uploads,
accesses and publishing at random times.

- no image is deleted before its time;
- every image reaches a terminal state (deleted) once nothing happens to it any more;
- a published image never outlives publish + 7 days by more than one sweep interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shelflife.domain.policy import accessed, next_step, published
from shelflife.domain.records import ImageAction, ImageRecord, ImageState
from shelflife.domain.settings import TierName
from tests.support.lifecycle import NOW, World

SWEEP_INTERVAL = timedelta(days=1)
DAYS = timedelta(days=1)
# Enough sweeps for any life below: each event adds at most a restore, an archive and
# a deletion.
MAX_SWEEPS = 40


def next_sweep(after: datetime) -> datetime:
    """The first daily 03:00 UTC run at or after ``after``."""
    run = after.replace(hour=3, minute=0, second=0, microsecond=0)
    return run if run >= after else run + DAYS


events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=900, allow_nan=False),  # days after upload
        st.sampled_from(["access", "access", "publish"]),
    ),
    max_size=5,
).map(sorted)


def live(world: World, image: ImageRecord) -> ImageRecord | None:
    current = world.get(image)
    return current if current.state is ImageState.ACTIVE else None


def sweep_until(world: World, image: ImageRecord, until: datetime | None) -> int:
    """Run the daily sweeps whenever the image is due, up to ``until`` (None: until it
    is gone); the number of sweeps. Days with nothing due are skipped: a sweep that
    finds nothing changes nothing."""
    sweeps = 0
    while (current := live(world, image)) is not None and sweeps < MAX_SWEEPS:
        assert current.due_at is not None, "a live image always has a next step"
        run = next_sweep(current.due_at)
        if until is not None and run > until:
            break
        world.now = run
        world.sweep()
        sweeps += 1
    return sweeps


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    start_hour=st.floats(min_value=0, max_value=24 * 7, allow_nan=False),
    life=events,
)
def test_the_policy_keeps_its_promises(start_hour: float, life: list[tuple[float, str]]) -> None:
    world = World()
    world.now = NOW + timedelta(hours=start_hour)
    image = world.upload()
    upload = world.now
    last_use, published_at = upload, None
    for offset, kind in life:
        when = upload + timedelta(days=offset)
        sweep_until(world, image, when)
        if live(world, image) is None:
            break
        world.now = when
        if kind == "access":
            world.change(image, accessed)
            last_use = when
        elif published_at is None:
            world.change(image, published)
            published_at = when
    sweeps = sweep_until(world, image, None)

    gone = world.get(image)
    assert gone.state is ImageState.DELETED, f"still {gone.state} after {sweeps} sweeps"
    deleted_at = world.now
    if published_at is not None:
        assert published_at + timedelta(days=7) <= deleted_at
        assert deleted_at <= published_at + timedelta(days=7) + SWEEP_INTERVAL
    else:
        # Idle 90 days in HOT, then 365 days in COLD, from the last time it was used.
        assert deleted_at >= last_use + timedelta(days=90 + 365)
    world.assert_consistent()


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    tier=st.sampled_from(list(TierName)),
    age_days=st.floats(min_value=0, max_value=1000, allow_nan=False),
    accesses=st.integers(min_value=0, max_value=3),
    published_days_ago=st.none() | st.floats(min_value=0, max_value=30, allow_nan=False),
)
def test_a_deletion_is_never_scheduled_before_its_time(
    tier: TierName, age_days: float, accesses: int, published_days_ago: float | None
) -> None:
    world = World()
    publish = None if published_days_ago is None else NOW - timedelta(days=published_days_ago)
    image = world.upload(
        tier,
        age=timedelta(days=age_days),
        access_count=accesses,
        last_accessed_at=NOW if accesses else None,
        published_at=publish,
    )

    step = next_step(image, world.settings)

    assert step is not None
    if step.action is ImageAction.DELETE:
        placed = image.placed_at or image.uploaded_at
        if publish is not None:
            assert step.due_at == publish + timedelta(days=7)
        else:
            assert tier is TierName.COLD
            assert accesses == 0  # accessed in COLD: restored, not deleted
            assert step.due_at == placed + timedelta(days=365)
