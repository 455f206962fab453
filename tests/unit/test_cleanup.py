"""CleanupService on the in-memory table and store: what a change lets go of is deleted
unless still referenced; failures are retried, then dead-lettered with their reason,
and a redrive finishes them; replays end in the same state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from shelflife.adapters.backends import ProviderBackends
from shelflife.adapters.queues import MemoryQueue
from shelflife.adapters.table.dynamo import stream_change, stream_record
from shelflife.domain.errors import InvalidArgument, RecordsExpired, Throttled
from shelflife.domain.policy import soft_deleted
from shelflife.domain.records import CleanupStatus, ImageRecord, ImageState, StreamChange
from shelflife.domain.settings import TierName
from shelflife.services.cleanup import DEAD_LETTER_SOURCE, CleanupService, Outcome
from tests.support.crashes import FlakyStore
from tests.support.lifecycle import World


@pytest.fixture
def world() -> World:
    return World()


def service(world: World, queue: MemoryQueue | None = None, **stores: Any) -> CleanupService:
    given = {name.value: store for name, store in world.stores.items()}
    return CleanupService(
        world.repository,
        ProviderBackends(world.settings, given={**given, **stores}),
        settings=world.settings,
        dead_letters=queue if queue is not None else MemoryQueue(),
        read_change=stream_change,
        clock=lambda: world.now,
    )


def changes(world: World, start: int = 0) -> Iterator[StreamChange]:
    """The in-memory table's changes since ``start``, as the stream would deliver them."""
    for n, (old, new) in enumerate(world.repository.stream[start:], start):
        yield stream_change(stream_record(f"event-{n}", old, new))


def exists(world: World, image: ImageRecord) -> bool:
    assert image.location is not None
    return world.memory.exists(image.location.bucket, image.location.key)


def soft_delete(world: World, image: ImageRecord) -> StreamChange:
    start = len(world.repository.stream)
    world.change(image, lambda current, now, settings: soft_deleted(current, now, settings))
    (change,) = changes(world, start)
    return change


def test_a_soft_delete_deletes_the_object_and_a_replay_changes_nothing(world: World) -> None:
    image, other = world.upload(), world.upload()
    cleanup = service(world)
    change = soft_delete(world, image)

    first = cleanup.process(change)
    replays = [cleanup.process(change) for _ in range(3)]

    assert first.outcome is Outcome.COMPLETED
    assert first.deleted == (image.location,)
    assert not exists(world, image)
    assert exists(world, other)
    assert {r.outcome for r in replays} == {Outcome.COMPLETED}  # deleting the gone is done
    assert world.repository.cleanup_tasks() == []  # nothing failed, nothing remembered


def test_changes_that_let_go_of_nothing_are_ignored(world: World) -> None:
    image = world.upload()
    cleanup = service(world)
    world.change(
        image, lambda current, now, settings: current.model_copy(update={"access_count": 5})
    )

    outcomes = [cleanup.process(change).outcome for change in changes(world)]

    assert outcomes == [Outcome.IGNORED, Outcome.IGNORED]  # the upload, the access
    assert exists(world, image)


def test_an_object_the_record_points_at_again_is_kept(world: World) -> None:
    image = world.upload()
    deleted = soft_delete(world, image)
    # Uploaded again before cleanup ran: the same id and key, live once more.
    current = world.get(image)
    world.repository.replace_image(
        current, current.model_copy(update={"state": ImageState.ACTIVE, "expires_at": None})
    )

    result = service(world).process(deleted)

    assert (result.outcome, result.kept) == (Outcome.SKIPPED, (image.location,))
    assert exists(world, image)


def test_a_store_that_fails_twice_then_works_ends_completed(world: World) -> None:
    image = world.upload()
    flaky = FlakyStore(world.memory, failures=2)
    queue = MemoryQueue()
    cleanup = service(world, queue, memory=flaky)
    change = soft_delete(world, image)

    for attempt in (1, 2):  # the stream delivers the record again after each failure
        with pytest.raises(Throttled):
            cleanup.process(change)
        task = world.repository.find_cleanup_task(change.event_id)
        assert task is not None
        assert (task.status, task.attempts) == (CleanupStatus.RETRYING, attempt)
    assert cleanup.health().pending == 1
    result = cleanup.process(change)

    assert result.outcome is Outcome.COMPLETED
    assert not exists(world, image)
    task = world.repository.find_cleanup_task(change.event_id)
    assert task is not None
    assert (task.status, task.attempts) == (CleanupStatus.COMPLETED, 2)
    assert "Throttled" in task.error
    assert queue.depth() == 0
    assert cleanup.health().pending == 0


def test_a_store_that_always_fails_lands_in_the_dead_letter_queue_and_redrive_finishes(
    world: World,
) -> None:
    image = world.upload()
    flaky = FlakyStore(world.memory, failures=None)
    queue = MemoryQueue()
    change = soft_delete(world, image)
    cleanup = service(world, queue, memory=flaky)

    outcomes: list[str] = []
    for _ in range(world.settings.cleanup_max_attempts):
        try:
            outcomes.append(cleanup.process(change).outcome)
        except Throttled:
            outcomes.append("retry")

    assert outcomes == ["retry", "retry", Outcome.FAILED]  # the last one lets the shard go on
    (letter,) = queue.bodies()
    assert letter["source"] == DEAD_LETTER_SOURCE
    assert (letter["image_id"], letter["attempts"]) == (image.id, 3)
    assert letter["error"] == "Throttled: memory: delete: slow down"
    assert stream_change(letter["record"]) == change
    health = cleanup.health()
    assert (health.status, health.dead_letters, health.failed_last_hour) == ("alarm", 1, 1)
    assert exists(world, image)

    # Still broken: the message stays and the attempt is counted.
    queue.release()
    assert cleanup.redrive().failed == 1
    task = world.repository.find_cleanup_task(change.event_id)
    assert task is not None
    assert (task.status, task.attempts) == (CleanupStatus.FAILED, 4)

    # Mended: the redrive replays the change through the same code.
    flaky.failures = 0
    queue.release()
    report = cleanup.redrive()

    assert (report.completed, report.failed, report.objects_deleted) == (1, 0, 1)
    assert not exists(world, image)
    assert queue.depth() == 0
    task = world.repository.find_cleanup_task(change.event_id)
    assert task is not None
    assert task.status is CleanupStatus.COMPLETED
    assert cleanup.health().status == "ok"


def test_health_warns_past_the_thresholds(world: World) -> None:
    world.settings = world.settings.model_copy(
        update={"cleanup_warning_pending": 1, "cleanup_warning_failed_per_hour": 0}
    )
    images = [world.upload() for _ in range(2)]
    cleanup = service(world, memory=FlakyStore(world.memory, failures=None))
    deletes = [soft_delete(world, image) for image in images]
    for change in deletes:
        with pytest.raises(Throttled):
            cleanup.process(change)

    health = cleanup.health()
    assert (health.status, health.pending) == ("warning", 2)
    assert health.reasons == ("2 changes pending a retry (more than 1)",)
    assert [task.image_id for task in health.recent_failures] == [images[1].id, images[0].id]

    world.now += timedelta(hours=2)  # failures older than an hour no longer count
    assert cleanup.health().failed_last_hour == 0


def test_redrive_leaves_messages_it_cannot_replay(world: World) -> None:
    queue = MemoryQueue()
    queue.send({"hello": "world"})
    queue.send({"DDBStreamBatchInfo": {"shardId": "s"}})
    cleanup = service(world, queue)

    class GoneStream:
        def batch(self, info: Any) -> list[dict[str, Any]]:
            raise RecordsExpired("stream records 1..2: TrimmedDataAccessException")

    cleanup.stream = GoneStream()
    report = cleanup.redrive()

    assert (report.unreadable, report.expired, report.completed) == (1, 1, 0)
    assert queue.depth() == 2
    with pytest.raises(InvalidArgument):
        cleanup.redrive(max_messages=0)
    with pytest.raises(InvalidArgument):
        CleanupService(world.repository, world.backends()).redrive()


def test_a_stream_record_that_is_not_one_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgument, match="not a DynamoDB stream record"):
        stream_change({"eventName": "MODIFY"})


def test_cleanup_catches_up_with_a_lifecycle_move(world: World) -> None:
    image = world.upload(TierName.TEMP, age=timedelta(days=3))
    world.service().run()
    cleanup = service(world)

    outcomes = [cleanup.process(change).outcome for change in changes(world)]

    assert Outcome.COMPLETED in outcomes
    assert world.tier_of(image) is TierName.HOT
    world.assert_consistent()
