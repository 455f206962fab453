"""What the lifecycle learns from the deployment's own publishes (issue 21, part 3): the
publish-age counters the API keeps, the archive day they allow, and a sweep using it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shelflife.adapters.table.models import DailyModel
from shelflife.domain.auth import Caller
from shelflife.domain.records import (
    DAILY_COUNTERS,
    PUBLISH_AGE_COUNTERS,
    DailyCounts,
    ImageAction,
)
from shelflife.domain.settings import Settings, TierName
from shelflife.domain.tuning import archive_idle_days, publish_age_counter, tuned_settings
from shelflife.services.photos import PhotoService
from tests.support.lifecycle import NOW, World, lifecycle_settings


@pytest.fixture
def world() -> World:
    return World()


def days_of(**counts: int) -> list[DailyCounts]:
    return [DailyCounts(day=date(2026, 11, 1), counts=counts)]


@pytest.mark.parametrize(
    ("age", "counter"),
    [
        (timedelta(0), "published_within_1d"),
        (timedelta(days=1), "published_within_1d"),
        (timedelta(days=1, seconds=1), "published_within_2d"),
        (timedelta(days=9.5), "published_within_10d"),
        (timedelta(days=90), "published_within_90d"),
        (timedelta(days=91), "published_after_90d"),
    ],
)
def test_a_publish_is_counted_by_the_photos_age(age: timedelta, counter: str) -> None:
    assert publish_age_counter(age) == counter


def test_the_archive_day_is_the_age_by_which_nearly_every_photo_was_published() -> None:
    settings = lifecycle_settings()
    assert settings.hot_idle_days == 90
    # 990 of 1,000 within 10 days: drafts are known after 10 days.
    counts = days_of(published_within_3d=500, published_within_10d=490, published_after_90d=10)
    assert archive_idle_days(counts, settings) == 10
    # One in fifty published after 30 days: not sure before 60.
    late = days_of(published_within_3d=490, published_within_10d=490, published_within_60d=20)
    assert archive_idle_days(late, settings) == 60
    # Too few measured, learning off, or a setting shorter than what was learned.
    assert archive_idle_days(days_of(published_within_1d=99), settings) == 90
    off = lifecycle_settings(learned_archive=False)
    assert archive_idle_days(counts, off) == 90
    assert archive_idle_days(counts, lifecycle_settings(hot_idle_days=7)) == 7


def test_the_table_keeps_every_daily_counter() -> None:
    assert set(PUBLISH_AGE_COUNTERS) <= set(DAILY_COUNTERS)
    assert all(hasattr(DailyModel, name) for name in DAILY_COUNTERS)


def test_publishing_counts_each_photos_age_in_one_write() -> None:
    world = World()
    young = world.upload(age=timedelta(hours=20), draft_id="d1")
    older = world.upload(age=timedelta(days=12), draft_id="d1")
    service = PhotoService(world.settings, world.repository, world.backends(), clock=lambda: NOW)

    result = service.publish(Caller("alice"), "d1", [young.id, older.id])

    assert sorted(result.updated) == sorted([young.id, older.id])
    [today] = world.repository.daily_counts(NOW.date())
    assert today.counts["published"] == 2
    assert today.counts["published_within_1d"] == 1
    assert today.counts["published_within_14d"] == 1


def test_a_sweep_archives_drafts_after_the_learned_age(world: World) -> None:
    world.settings = lifecycle_settings(promote_in_place=True)
    world.repository.add_daily_counts(
        (NOW - timedelta(days=5)).date(), {"published_within_7d": 150, "published_within_2d": 50}
    )
    # Uploaded with the settings ingest schedules with: the learned ones (its TEMP is
    # promoted in place without a write, so its schedule is HOT's from the upload).
    configured = world.settings
    world.settings = tuned_settings(configured, world.repository, NOW)
    draft = world.upload(age=timedelta(days=3), size=400_000)
    world.settings = configured
    assert draft.due_at == draft.uploaded_at + timedelta(days=7)

    report = world.sweep()

    assert report.archive_idle_days == 7
    assert report.as_dict()["archive_idle_days"] == 7
    world.now = NOW + timedelta(days=4)
    assert world.sweep().counts["archived"] == 1
    assert world.tier_of(draft) is TierName.COLD
    world.assert_consistent()


def test_without_measured_publishes_the_setting_holds(world: World) -> None:
    world.settings = lifecycle_settings(promote_in_place=True)
    draft = world.upload(age=timedelta(days=3))

    report = world.sweep()

    assert report.archive_idle_days == 90
    assert world.get(draft).due_at == draft.uploaded_at + timedelta(days=90)


def test_a_shorter_learned_day_reschedules_the_images_scheduled_before(world: World) -> None:
    from shelflife.adapters.queues import MemoryQueue
    from shelflife.domain.requests import lifecycle_request
    from shelflife.services.lifecycle import LifecycleService

    world.settings = lifecycle_settings(promote_in_place=True)
    waiting = world.upload(TierName.HOT, age=timedelta(days=20), size=400_000)  # due at 90
    queue = MemoryQueue()

    def service() -> LifecycleService:
        return LifecycleService(
            world.settings,
            world.repository,
            world.backends(),
            clock=lambda: world.now,
            continuations=queue,
        )

    def sweep(event: dict[str, object]) -> None:
        service().sweep(lifecycle_request(event), lambda: 600_000)
        world.cleanup()

    sweep({"action": "run"})
    assert queue.bodies() == []  # nothing measured: the setting holds, nothing to redo
    world.repository.add_daily_counts(NOW.date(), {"published_within_7d": 200})
    world.now = NOW + timedelta(days=1)

    sweep({"action": "run"})

    [message] = queue.bodies()
    assert (message["action"], message["dry_run"]) == ("reschedule", False)
    assert world.get(waiting).due_at == waiting.uploaded_at + timedelta(days=90)
    sweep(message)  # the queue delivers it to the function
    assert world.get(waiting).due_at == waiting.uploaded_at + timedelta(days=7)
    world.now = NOW + timedelta(days=2)
    sweep({"action": "run"})
    assert world.tier_of(waiting) is TierName.COLD
    assert len(queue.bodies()) == 1  # the day did not change again: no second reschedule
    world.assert_consistent()


def test_ingest_schedules_a_new_upload_on_the_learned_day() -> None:
    from tests.support.corpus import corpus_file
    from tests.unit.test_ingest import PHOTO, UPLOADS
    from tests.unit.test_ingest import World as IngestWorld
    from tests.unit.test_settings import ENV

    # The defaults' shape: TEMP and HOT on one offer (one in-memory store here).
    world = IngestWorld(
        settings=Settings.from_env(
            ENV,
            upload_bucket=UPLOADS,
            temp={"backend": "memory", "bucket": "shelflife-temp"},
            hot={"backend": "memory", "bucket": "shelflife-hot"},
        )
    )
    world.repository.add_daily_counts(
        (NOW - timedelta(days=5)).date(), {"published_within_7d": 150, "published_within_2d": 50}
    )
    service = world.service()
    assert service.settings.promotes_in_place()
    stored = service.ingest(world.upload(corpus_file(PHOTO))).image
    assert stored is not None
    # Its TEMP stores on HOT's offer: no promotion is written at 48 h, its next step is
    # HOT's archive, on the day the deployment's publishes taught (not the setting's 90).
    assert (stored.next_action, stored.due_at) == (
        ImageAction.ARCHIVE,
        stored.uploaded_at + timedelta(days=7),
    )
