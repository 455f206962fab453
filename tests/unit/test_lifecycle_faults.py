"""Moves across backends under faults: S3 to S3, S3 to R2 (moto; a promotion, and a
published photo moved to the serving buckets), S3 to B2 and B2 to S3 (b2sdk's
simulator). A crash after any step (reads included: after the copy, after
the verification, after the flip, before cleanup ran) or a throttling error from S3, R2,
B2 or the table at any step; then the next sweep and the cleanup function converge: the
image is where the policy says, no image lost, no record pointing to a missing object,
no orphan, counters equal to their records."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from moto import mock_aws

from shelflife.domain.errors import Throttled
from shelflife.domain.policy import accessed, published
from shelflife.domain.records import ImageRecord
from shelflife.domain.settings import TierName
from shelflife.services.lifecycle import LifecycleReport
from tests.support.crashes import READS, WRITES, InjectedCrash, Steps
from tests.support.lifecycle import World, lifecycle_settings, real_stores

# Every call that counts as a step of a sweep.
EVERY_STEP = WRITES | READS


@dataclass(frozen=True)
class Move:
    backends: dict[str, str]  # tier -> backend
    source: TierName
    destination: TierName
    prepare: Callable[[World], ImageRecord]
    # Published photos served from R2 (``Settings.serve``): the destination is there.
    serve: bool = False


def _due_promotion(world: World) -> ImageRecord:
    return world.upload(TierName.TEMP, age=timedelta(days=3))


def _due_archive(world: World) -> ImageRecord:
    # Large enough for a year in COLD to pay for leaving S3.
    return world.upload(TierName.HOT, age=timedelta(days=90), size=400_000)


def _due_restore(world: World) -> ImageRecord:
    image = world.upload(TierName.COLD, age=timedelta(days=10))
    return world.change(image, accessed)


def _due_serve(world: World) -> ImageRecord:
    image = world.upload(TierName.HOT, age=timedelta(days=3))
    return world.change(image, published)


MOVES = {
    "s3-to-s3": Move({"temp": "s3", "hot": "s3"}, TierName.TEMP, TierName.HOT, _due_promotion),
    "s3-to-r2": Move({"temp": "s3", "hot": "r2"}, TierName.TEMP, TierName.HOT, _due_promotion),
    "s3-to-b2": Move({"hot": "s3", "cold": "b2"}, TierName.HOT, TierName.COLD, _due_archive),
    "b2-to-s3": Move({"cold": "b2", "hot": "s3"}, TierName.COLD, TierName.HOT, _due_restore),
    "serve-s3-to-r2": Move({"hot": "s3"}, TierName.HOT, TierName.HOT, _due_serve, serve=True),
}
SERVE = {"backend": "r2", "bucket": "shelflife-serve"}


@contextlib.contextmanager
def deployment(move: Move) -> Iterator[tuple[World, ImageRecord]]:
    with mock_aws():
        stores = real_stores()
        serving: dict[str, object] = (
            {"serve": SERVE, "serve_published": "always"} if move.serve else {}
        )
        settings = lifecycle_settings(
            **{tier: {"backend": backend} for tier, backend in move.backends.items()},
            **serving,
        )
        world = World(settings=settings, stores=stores)
        yield world, move.prepare(world)


def clean_run(name: str) -> list[str]:
    """The steps of one sweep that moves the image, in order."""
    with deployment(MOVES[name]) as (world, _):
        steps = Steps(EVERY_STEP)
        world.service(steps).run()
        return steps.log


def assert_converged(world: World, image: ImageRecord, move: Move) -> None:
    assert world.tier_of(image) is move.destination
    moved = world.get(image)
    assert moved.location is not None
    expected = world.settings.serve if move.serve else world.settings.tier(move.destination)
    assert expected is not None
    assert moved.location.backend is expected.backend
    assert moved.move_to is None
    world.assert_consistent()


STEPS = {name: clean_run(name) for name in MOVES}
POINTS = [(name, n) for name, log in STEPS.items() for n in range(1, len(log) + 1)]


def image_phase(name: str) -> range:
    """The steps (1-based) that belong to the image's own processing, between the page
    that listed it and the next page: placement, claim, copy, verify, flip."""
    log = STEPS[name]
    first = log.index("table.list_buckets")
    last = max(i for i, step in enumerate(log) if step == "table.replace_image")
    return range(first + 1, last + 2)


def crash_points(*, after_first_write: bool) -> list[tuple[str, int]]:
    if not after_first_write:
        return POINTS
    # Before the run's first image write the stream has nothing for cleanup to read.
    return [(name, n) for name, n in POINTS if n > STEPS[name].index("table.replace_image")]


def test_a_clean_move_copies_verifies_flips_and_leaves_the_source_to_cleanup() -> None:
    for name, move in MOVES.items():
        log = STEPS[name]
        source = move.backends[move.source.value]
        destination = "r2" if move.serve else move.backends[move.destination.value]
        claim = log.index("table.replace_image")
        copy = next(
            i
            for i, step in enumerate(log)
            if step in {f"{destination}.put_stream", f"{destination}.copy"}
        )
        verify = max(i for i, step in enumerate(log) if step == f"{destination}.head")
        flip = max(i for i, step in enumerate(log) if step == "table.replace_image")
        assert claim < copy < verify < flip, (name, log)
        assert f"{source}.delete" not in log  # the source is the cleanup function's


@pytest.mark.parametrize(("name", "step"), crash_points(after_first_write=False))
def test_a_crash_after_any_step_is_repaired_by_the_next_sweep(name: str, step: int) -> None:
    crash_then_sweep(name, step, cleanup_between=True)


@pytest.mark.parametrize(("name", "step"), crash_points(after_first_write=True))
def test_a_crash_is_repaired_also_when_cleanup_reads_the_stream_only_later(
    name: str, step: int
) -> None:
    crash_then_sweep(name, step, cleanup_between=False)


def crash_then_sweep(name: str, step: int, *, cleanup_between: bool) -> None:
    move = MOVES[name]
    with deployment(move) as (world, image):
        steps = Steps(EVERY_STEP)
        steps.crash_after = step
        with pytest.raises(InjectedCrash):
            world.service(steps).run()
        if cleanup_between:
            world.cleanup()  # the stream is read whatever the sweep is doing

        world.now += timedelta(minutes=5)
        world.sweep()

        assert_converged(world, image, move)


@pytest.mark.parametrize(("name", "step"), POINTS)
def test_throttling_at_any_step_fails_softly_and_the_next_sweep_converges(
    name: str, step: int
) -> None:
    move = MOVES[name]
    label, call = STEPS[name][step - 1].split(".")
    provider = "dynamodb" if label == "table" else label

    def throttle() -> None:
        raise Throttled(f"{call}: slow down", backend=provider)

    with deployment(move) as (world, image):
        steps = Steps(EVERY_STEP)
        steps.before = (step, throttle)
        report: LifecycleReport | None = None
        with contextlib.suppress(Throttled):
            report = world.service(steps).run()
        world.cleanup()
        if step in image_phase(name):
            # Inside the image's move: that image failed (and stays due), the run went on.
            assert report is not None
            assert (report.counts["failed"], report.failures[0].split(": ")[1]) == (1, "Throttled")
        else:
            assert report is None  # a page or the run record: the run fails, and is rerun

        world.now += timedelta(minutes=5)
        world.sweep()

        assert_converged(world, image, move)
