"""The lifecycle sweep on the in-memory twins: each rule of the policy, cost-aware
skips, rollbacks of moves the policy no longer wants, dry runs, the time budget and
its continuation, and the run records."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from shelflife.domain.auth import Caller
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.policy import accessed, published, tier_at
from shelflife.domain.records import ImageAction, ImageRecord, ImageState, RunKind, RunStatus
from shelflife.domain.settings import TierName
from shelflife.domain.storage import BucketPolicy
from shelflife.services.lifecycle import COUNTED, REPORT_LIMIT, SweepCursor
from shelflife.services.photos import PhotoService
from tests.support.crashes import Steps
from tests.support.lifecycle import COLD, HOT, NOW, TEMP, World, lifecycle_settings


@pytest.fixture
def world() -> World:
    return World()


# ---- the rules ----------------------------------------------------------------------


def test_a_late_sweep_takes_an_image_through_every_step_due_and_a_second_changes_nothing(
    world: World,
) -> None:
    # Swept 91 days after the upload (the schedule was off): due for HOT since day 2, and
    # for COLD since day 90 (the idle clock counts from the upload). Both in one sweep,
    # so a second delivery of the same schedule has nothing left to do.
    late = world.upload(age=timedelta(days=91), size=400_000)

    first = world.sweep()
    second = world.sweep()

    assert world.tier_of(late) is TierName.COLD
    assert (first.counts["examined"], first.counts["promoted"], first.counts["archived"]) == (
        1,
        1,
        1,
    )
    assert second.counts["examined"] == 0
    world.assert_consistent()


def test_an_upload_is_promoted_after_48_hours_and_not_before(world: World) -> None:
    young = world.upload(age=timedelta(hours=47))
    due = world.upload(age=timedelta(hours=48))

    report = world.sweep()

    assert (world.tier_of(young), world.tier_of(due)) == (TierName.TEMP, TierName.HOT)
    moved = world.get(due)
    assert moved.location is not None
    assert (moved.location.bucket, moved.placed_at) == (HOT, NOW)
    assert (moved.next_action, moved.due_at) == (
        ImageAction.ARCHIVE,
        due.uploaded_at + timedelta(days=90),
    )
    assert (report.counts["examined"], report.counts["promoted"]) == (1, 1)
    world.assert_consistent()  # the TEMP copy is gone once cleanup saw the stream


def test_a_published_image_is_deleted_7_days_after_publishing_wherever_it_is(
    world: World,
) -> None:
    in_temp = world.upload(age=timedelta(hours=1), published_at=NOW - timedelta(days=7))
    in_hot = world.upload(
        TierName.HOT, age=timedelta(days=20), published_at=NOW - timedelta(days=7)
    )
    not_yet = world.upload(age=timedelta(hours=1), published_at=NOW - timedelta(days=6))

    report = world.sweep()

    assert world.get(in_temp).state is ImageState.DELETED
    assert world.get(in_hot).state is ImageState.DELETED
    assert world.get(in_temp).expires_at == NOW + timedelta(days=30)  # then the TTL
    assert world.tier_of(not_yet) is TierName.TEMP  # published: never promoted
    assert report.counts["deleted"] == 2
    world.assert_consistent()


def test_hot_images_idle_for_90_days_are_archived_and_an_access_resets_the_clock(
    world: World,
) -> None:
    idle = world.upload(TierName.HOT, age=timedelta(days=90))
    used = world.upload(TierName.HOT, age=timedelta(days=120))
    world.now = NOW - timedelta(days=10)
    world.change(used, accessed)
    world.now = NOW

    report = world.sweep()

    assert (world.tier_of(idle), world.tier_of(used)) == (TierName.COLD, TierName.HOT)
    assert world.get(used).due_at == NOW + timedelta(days=80)
    assert world.get(idle).due_at == NOW + timedelta(days=365)  # COLD retention from now
    assert report.counts["archived"] == 1
    world.assert_consistent()


def test_cold_images_are_deleted_after_365_days_in_cold(world: World) -> None:
    old = world.upload(TierName.COLD, age=timedelta(days=365))
    younger = world.upload(TierName.COLD, age=timedelta(days=364))

    world.sweep()

    assert world.get(old).state is ImageState.DELETED
    assert world.tier_of(younger) is TierName.COLD
    world.assert_consistent()


def test_a_cold_image_accessed_again_is_restored_to_hot(world: World) -> None:
    image = world.upload(TierName.COLD, age=timedelta(days=10))
    world.change(image, accessed)

    report = world.sweep()

    restored = world.get(image)
    assert world.tier_of(image) is TierName.HOT
    assert (restored.next_action, restored.due_at) == (
        ImageAction.ARCHIVE,
        NOW + timedelta(days=90),
    )
    assert report.counts["restored"] == 1
    world.assert_consistent()


@pytest.mark.parametrize("tier", [TierName.TEMP, TierName.HOT, TierName.COLD])
def test_a_published_photos_access_changes_nothing_so_nothing_is_written(
    world: World, tier: TierName
) -> None:
    # Its next steps (served, deleted 7 days after publishing) do not depend on its
    # accesses; its views are counted by day. A COLD photo published is deleted on
    # time, not restored by its views.
    image = world.change(world.upload(tier, age=timedelta(days=10)), published)
    assert accessed(image, NOW + timedelta(hours=1), world.settings) is image
    photos = PhotoService(world.settings, world.repository, world.backends(), clock=lambda: NOW)
    for _ in range(3):
        photos.url(Caller("alice"), image.id)
    assert world.get(image).version == image.version
    assert world.repository.daily_counts(NOW.date())[0].counts["published_views"] == 3
    world.now += timedelta(days=8)
    world.sweep()
    assert not world.get(image).live


def test_the_restore_count_is_a_setting(world: World) -> None:
    world.settings = lifecycle_settings(restore_after_accesses=2)
    image = world.upload(TierName.COLD, age=timedelta(days=10))
    world.change(image, accessed)

    world.sweep()
    assert world.tier_of(image) is TierName.COLD

    world.change(image, accessed)
    world.sweep()
    assert world.tier_of(image) is TierName.HOT


def test_a_claim_nobody_finished_is_deleted_after_a_day_with_its_object(world: World) -> None:
    claim = world.upload(age=timedelta(days=1), state=ImageState.PENDING)

    report = world.sweep()

    assert world.get(claim).state is ImageState.DELETED
    assert report.counts["deleted"] == 1
    assert world.objects() == set()


def test_a_record_no_longer_due_is_rescheduled_not_moved(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=100))
    # The index entry says "archive now", but the record was read (by the API) since,
    # without rescheduling: the sweep trusts the record, not the entry.
    current = world.get(image)
    world.repository.replace_image(
        current, current.model_copy(update={"last_accessed_at": NOW - timedelta(days=1)})
    )

    report = world.sweep()

    assert world.tier_of(image) is TierName.HOT
    assert world.get(image).due_at == NOW + timedelta(days=89)
    assert report.counts["rescheduled"] == 1


# ---- cost-aware moves -----------------------------------------------------------------


def test_an_archive_that_costs_more_than_it_saves_is_skipped_and_counted(world: World) -> None:
    # One day in COLD cannot pay for the egress of leaving S3.
    world.settings = lifecycle_settings(
        hot={"backend": "s3"}, cold={"backend": "b2"}, cold_retention_days=1
    )
    image = world.upload(TierName.HOT, age=timedelta(days=90), size=400_000)

    report = world.sweep()

    skipped = world.get(image)
    assert skipped.location is not None
    assert skipped.location.tier is TierName.HOT
    assert (skipped.archive_skipped_at, skipped.next_action) == (NOW, ImageAction.DELETE)
    assert skipped.due_at == NOW + timedelta(days=1)  # when it would have left COLD
    assert (report.counts["skipped"], report.counts["skipped_cost"]) == (1, 1)
    assert report.actions[0]["detail"].startswith("cost: ")
    world.assert_consistent()


def test_the_same_archive_with_a_year_in_cold_ahead_goes_ahead(world: World) -> None:
    world.settings = lifecycle_settings(hot={"backend": "s3"}, cold={"backend": "b2"})
    image = world.upload(TierName.HOT, age=timedelta(days=90), size=400_000)

    report = world.sweep()

    assert world.tier_of(image) is TierName.COLD
    assert report.counts["skipped"] == 0


def test_cold_on_s3_is_written_in_glacier_instant_retrieval(world: World) -> None:
    # Issue 21: the tier's offer decides the storage class; the move stays inside AWS.
    world.settings = lifecycle_settings(hot={"backend": "s3"}, cold={"backend": "s3"})
    assert world.settings.offer_name(TierName.COLD) == "s3_glacier_instant"
    image = world.upload(TierName.HOT, age=timedelta(days=90), size=400_000)

    world.sweep()

    moved = world.get(image)
    assert moved.location is not None
    assert moved.location.tier is TierName.COLD
    info = world.memory.head(moved.location.bucket, moved.location.key)
    assert info.storage_class == "GLACIER_IR"
    world.assert_consistent()


def test_a_short_stay_in_glacier_instant_retrieval_does_not_pay_its_write_and_minimums(
    world: World,
) -> None:
    # Ten days left in COLD: Glacier IR bills 90 days, and a 20 KB image as 128 KB.
    world.settings = lifecycle_settings(
        hot={"backend": "s3"}, cold={"backend": "s3"}, cold_retention_days=10
    )
    image = world.upload(TierName.HOT, age=timedelta(days=90), size=20_000)

    report = world.sweep()

    assert world.tier_of(image) is TierName.HOT
    assert report.counts["skipped_cost"] == 1


def test_an_access_after_a_skipped_archive_starts_the_hot_clock_again(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=100), archive_skipped_at=NOW)
    assert world.get(image).next_action is ImageAction.DELETE
    world.now = NOW + timedelta(hours=1)

    again = world.change(image, accessed)

    assert (again.next_action, again.due_at) == (
        ImageAction.ARCHIVE,
        world.now + timedelta(days=90),
    )


# ---- moves that are no longer wanted ----------------------------------------------------


def test_a_claimed_move_the_policy_no_longer_wants_is_rolled_back(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=90))
    # A sweep claimed COLD and copied, then died; the image was published since.
    current = world.get(image)
    assert current.location is not None
    target = current.location.model_copy(update={"tier": TierName.COLD, "bucket": COLD})
    world.memory.copy(HOT, current.location.key, COLD, target.key)
    current = world.repository.replace_image(
        current, current.model_copy(update={"move_to": target})
    )
    world.change(image, published)

    report = world.sweep()

    after = world.get(image)
    assert (after.move_to, world.tier_of(image)) == (None, TierName.HOT)
    assert after.next_action is ImageAction.DELETE
    assert report.counts["rolled_back"] == 1
    world.assert_consistent()  # the copy in COLD was released and deleted


def test_a_full_destination_is_marked_and_the_move_goes_to_the_next_bucket(world: World) -> None:
    image = world.upload(age=timedelta(days=3))
    world.service().placement.buckets(TierName.HOT)
    world.memory._buckets.pop(HOT)  # the provider lost the bucket

    report = world.sweep()

    moved = world.get(image)
    assert moved.location is not None
    assert moved.location.bucket == f"{HOT}-1"
    statuses = {b.name: b.status.value for b in world.repository.list_buckets("hot")}
    assert statuses == {HOT: "missing", f"{HOT}-1": "active"}
    assert report.counts["promoted"] == 1


# ---- dry run, time budget, continuation, run records ------------------------------------


def test_a_dry_run_reports_what_it_would_do_and_changes_nothing(world: World) -> None:
    promote = world.upload(age=timedelta(days=3))
    delete = world.upload(TierName.COLD, age=timedelta(days=400))
    before = (world.objects(), len(world.repository.stream))

    report = world.sweep(dry_run=True)

    assert (world.objects(), len(world.repository.stream)) == before
    planned = {(a["image_id"], a["action"], a["outcome"]) for a in report.actions}
    assert planned == {(promote.id, "promote", "promoted"), (delete.id, "delete", "deleted")}
    [run] = world.repository.recent_runs(RunKind.LIFECYCLE)
    assert (run.dry_run, run.counts["promoted"], run.counts["deleted"]) == (True, 1, 1)


def test_a_sweep_stops_before_its_time_runs_out_and_its_continuation_finishes(
    world: World,
) -> None:
    world.settings = lifecycle_settings(lifecycle_page_size=3, lifecycle_time_margin_seconds=1)
    images = [world.upload(age=timedelta(days=3)) for _ in range(20)]
    budget = iter([5000, 5000, 0])  # two pages, then the Lambda's time is nearly up

    first = world.service().run(remaining_ms=lambda: next(budget, 0))

    assert not first.complete
    assert first.counts["promoted"] == 6
    [run] = world.repository.recent_runs(RunKind.LIFECYCLE)
    assert (run.status, run.cursor) == (RunStatus.RUNNING, first.cursor)

    resumed = world.service().resume(first.run_id, first.started_at)

    assert resumed.complete
    assert resumed.counts["promoted"] == 20  # the run's counts, both invocations
    assert all(world.tier_of(image) is TierName.HOT for image in images)
    [run] = world.repository.recent_runs(RunKind.LIFECYCLE)
    assert (run.status, run.cursor, run.counts["examined"]) == (RunStatus.COMPLETED, None, 20)
    # Delivered twice, the continuation finds the run complete and does nothing.
    again = world.service().resume(first.run_id, first.started_at)
    assert again.counts["promoted"] == 20


def test_a_continuation_skips_past_an_image_that_keeps_failing(world: World) -> None:
    world.settings = lifecycle_settings(lifecycle_page_size=2, lifecycle_time_margin_seconds=1)
    stuck = world.upload(age=timedelta(days=5))  # due first
    others = [world.upload(age=timedelta(days=3)) for _ in range(3)]
    world.memory._buckets[TEMP].objects.pop(world.get(stuck).location.key)  # type: ignore[union-attr]
    budget = iter([5000, 0])

    first = world.service().run(remaining_ms=lambda: next(budget, 0))
    resumed = world.service().resume(first.run_id, first.started_at)

    assert world.get(stuck).state is ImageState.LOST
    assert all(world.tier_of(image) is TierName.HOT for image in others)
    assert (resumed.counts["lost"], resumed.counts["promoted"]) == (1, 3)


def test_an_invalid_cursor_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="invalid sweep cursor"):
        SweepCursor.decode("not json")


def test_the_summary_adds_up_the_runs_of_the_last_days(world: World) -> None:
    world.upload(age=timedelta(days=3))
    world.sweep()
    world.now = NOW + timedelta(days=1, hours=1)
    world.upload(TierName.COLD, age=timedelta(days=400))
    world.sweep()
    world.sweep(dry_run=True)

    summary = world.service().summary(days=7)

    assert (summary["runs"], summary["promoted"], summary["deleted"]) == (2, 1, 1)
    for run in world.repository.recent_runs(RunKind.LIFECYCLE):
        assert set(COUNTED) <= set(run.counts), "every count, zeros included"
    assert world.service().summary(days=1)["promoted"] == 0  # the first run is older
    with pytest.raises(InvalidArgument):
        world.service().summary(days=0)


def test_a_sweep_reads_the_bucket_records_once_and_still_spreads_its_moves(
    world: World,
) -> None:
    world.service().placement.buckets(TierName.HOT)
    world.memory.create_bucket(f"{HOT}-1", BucketPolicy(tier="hot"))
    world.repository.add_bucket(
        world.repository.get_bucket("hot", HOT).model_copy(update={"name": f"{HOT}-1"})
    )
    images = [world.upload(age=timedelta(days=3)) for _ in range(10)]
    steps = Steps(frozenset({"list_buckets"}))

    world.service(steps).run()

    assert steps.log.count("table.list_buckets") == 1
    buckets = [world.get(image).location.bucket for image in images]  # type: ignore[union-attr]
    assert Counter(buckets) == {HOT: 5, f"{HOT}-1": 5}


def test_a_source_whose_bytes_changed_is_not_moved_and_its_claim_is_given_back(
    world: World,
) -> None:
    # TEMP and HOT on different backends (one store serves both): the copy streams.
    world.settings = lifecycle_settings(hot={"backend": "s3"})
    image = world.upload(age=timedelta(days=3))
    assert image.location is not None
    stored = world.memory._buckets[TEMP].objects[image.location.key]
    world.memory._buckets[TEMP].objects[image.location.key] = type(stored)(
        info=stored.info, data=b"rotten" + stored.data[6:]
    )

    report = world.sweep()

    after = world.get(image)
    assert (after.location, after.move_to) == (image.location, None)
    assert (report.counts["failed"], report.counts["rolled_back"]) == (1, 1)
    assert report.actions[0]["detail"].startswith("checksum: ")
    assert {bucket for _, bucket, _ in world.objects()} == {TEMP}  # nothing landed in HOT


def test_a_report_lists_a_bounded_number_of_actions_and_counts_them_all(world: World) -> None:
    for _ in range(REPORT_LIMIT + 5):
        world.upload(age=timedelta(days=3))

    report = world.sweep()

    assert report.counts["promoted"] == REPORT_LIMIT + 5
    assert len(report.actions) == REPORT_LIMIT
    assert len(json.dumps(report.as_dict())) < 100_000  # far below an item's 400 KB


# ---- races: the API or a second run acting while a sweep is mid-flight ------------------


def claim_step(world: World, image: ImageRecord) -> int:
    """The number of the sweep's write that claims ``image``'s destination."""
    steps = Steps()
    probe = World(settings=world.settings)
    probe.upload(TierName.HOT, age=timedelta(days=90))
    probe.service(steps).run()
    return steps.log.index("table.replace_image") + 1


def test_an_access_just_before_the_claim_wins_and_the_image_stays(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=90))
    steps = Steps()
    steps.before = (claim_step(world, image), lambda: world.change(image, accessed))

    report = world.service(steps).run()
    world.cleanup()

    assert report.counts["changed"] == 1  # the claim lost: the record is newer
    assert world.tier_of(image) is TierName.HOT
    assert world.get(image).due_at == NOW + timedelta(days=90)  # the access rescheduled it
    world.assert_consistent()


def test_two_sweeps_at_once_move_an_image_once(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=90))
    steps = Steps()
    steps.before = (claim_step(world, image), lambda: world.service().run())

    report = world.service(steps).run()
    world.cleanup()

    assert report.counts["changed"] == 1
    assert world.tier_of(image) is TierName.COLD
    [archived] = [
        r for r in world.repository.recent_runs(RunKind.LIFECYCLE) if r.counts["archived"]
    ]
    assert archived.counts["archived"] == 1
    world.assert_consistent()


# ---- a reschedule after a change of policy settings (issue 21, part 5) ---------------


def test_a_shorter_hot_period_reaches_existing_images_only_through_a_reschedule(
    world: World,
) -> None:
    # Scheduled under 90 idle days; the setting then becomes 30. A sweep reads only what
    # its stored due dates say is due, so without a reschedule nothing moves for 60 days.
    idle = [world.upload(TierName.HOT, age=timedelta(days=40), size=400_000) for _ in range(3)]
    young = world.upload(TierName.HOT, age=timedelta(days=10), size=400_000)
    deleting = world.upload(TierName.COLD, age=timedelta(days=100))
    deleting_at = deleting.due_at
    world.settings = lifecycle_settings(hot_idle_days=30)

    assert world.sweep().counts["archived"] == 0

    report = world.service().run(reschedule=True)

    assert report.complete
    assert report.reschedule
    assert (report.counts["rescheduled"], report.counts["unchanged"]) == (4, 1)
    assert all(world.get(image).due_at == NOW - timedelta(days=10) for image in idle)
    assert world.get(young).due_at == NOW + timedelta(days=20)
    assert world.get(deleting).due_at == deleting_at  # COLD's 365 days did not change
    # It moved nothing and leaves no metric; the next sweep does the archiving.
    assert all(world.tier_of(image) is TierName.HOT for image in [*idle, young])
    assert report.measurements() == []
    assert world.sweep().counts["archived"] == 3
    assert world.tier_of(young) is TierName.HOT
    world.assert_consistent()


def test_a_reschedule_dry_run_counts_and_writes_nothing(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=40))
    world.settings = lifecycle_settings(hot_idle_days=30)
    before = len(world.repository.stream)

    report = world.service().run(reschedule=True, dry_run=True)

    assert report.counts["rescheduled"] == 1
    assert len(world.repository.stream) == before
    assert world.get(image).due_at == NOW + timedelta(days=50)


def test_a_reschedule_short_of_time_continues_as_a_reschedule(world: World) -> None:
    images = [world.upload(TierName.HOT, age=timedelta(days=5)) for _ in range(7)]
    world.settings = lifecycle_settings(
        lifecycle_page_size=2, lifecycle_time_margin_seconds=1, hot_idle_days=30
    )
    budget = iter([5000, 0])  # one page, then the Lambda's time is nearly up

    first = world.service().run(reschedule=True, remaining_ms=lambda: next(budget, 0))

    assert not first.complete
    assert first.counts["rescheduled"] == 2
    continuation = world.service().continuation(first)
    assert "reschedule" not in continuation  # the run record says what the run is
    resumed = world.service().resume(first.run_id, first.started_at, cursor=first.cursor)

    assert resumed.complete
    assert resumed.reschedule
    assert resumed.counts["rescheduled"] == 7
    assert all(world.get(image).due_at == NOW + timedelta(days=25) for image in images)
    # Reschedules are not sweeps: the lifecycle's summary leaves them out.
    assert world.service().summary(1)["runs"] == 0


def test_a_record_changed_during_a_reschedule_is_left_to_its_writer(world: World) -> None:
    image = world.upload(TierName.HOT, age=timedelta(days=40))
    world.settings = lifecycle_settings(hot_idle_days=30)
    service = world.service()
    stale = world.get(image)
    world.change(image, accessed)

    [result] = service._reschedule(stale, NOW, False)

    assert result.outcome.value == "changed"
    assert world.get(image).due_at == NOW + timedelta(days=30)  # the access's schedule


# ---- a promotion in place (TEMP and HOT on one offer: issue 21, part 3) ------------


def test_a_promotion_on_the_same_offer_writes_nothing_and_leaves_the_object(
    world: World,
) -> None:
    # Promoting would only relabel it, and HOT's clocks run from the upload: its next
    # step is its step in HOT, and the sweep at 48 h has nothing to do.
    world.settings = lifecycle_settings(promote_in_place=True)
    image = world.upload(age=timedelta(days=3), size=400_000)
    assert (image.next_action, image.due_at) == (
        ImageAction.ARCHIVE,
        image.uploaded_at + timedelta(days=90),
    )
    objects, before = world.objects(), world.get(image)
    report = world.sweep()
    assert report.counts["examined"] == 0
    assert world.get(image) == before  # not written
    assert world.objects() == objects
    assert tier_at(before, NOW, world.settings) is TierName.HOT  # what the photo says
    assert tier_at(before, before.uploaded_at + timedelta(hours=47), world.settings) is (
        TierName.TEMP
    )
    assert before.tier is TierName.TEMP  # where the bytes are
    world.assert_consistent()

    # HOT's rules from there: archived after 90 idle days, out of its TEMP bucket.
    world.now = NOW + timedelta(days=90)
    assert world.sweep().counts["archived"] == 1
    archived = world.get(image)
    assert archived.location is not None
    assert archived.location.tier is TierName.COLD
    assert not any(bucket == TEMP for _, bucket, _ in world.objects())
    world.assert_consistent()


def test_a_record_scheduled_for_a_promotion_in_place_is_rescheduled_by_one_write(
    world: World,
) -> None:
    # Scheduled by an earlier version (or before the settings put TEMP on HOT's
    # offer): the sweep finds it due, stores its step in HOT and moves nothing.
    image = world.upload(age=timedelta(days=3), size=400_000)
    assert image.next_action is ImageAction.PROMOTE
    world.settings = lifecycle_settings(promote_in_place=True)
    objects, temp_bucket = world.objects(), world.repository.get_bucket("temp", TEMP)

    world.sweep()

    after = world.get(image)
    assert after.version == (image.version or 0) + 1
    assert (after.next_action, after.due_at) == (
        ImageAction.ARCHIVE,
        after.uploaded_at + timedelta(days=90),
    )
    assert (after.location, after.placed_at) == (image.location, image.placed_at)
    assert tier_at(after, NOW, world.settings) is TierName.HOT
    assert world.objects() == objects  # nothing copied, nothing deleted
    assert world.repository.get_bucket("temp", TEMP) == temp_bucket
    world.assert_consistent()


def test_a_promotion_in_place_due_before_its_hot_step_marks_the_record(world: World) -> None:
    # HOT's step (archived after one idle day) would come before TEMP's 48 hours are
    # over: the record is promoted at 48 h (one write), then HOT's rules apply.
    world.settings = lifecycle_settings(promote_in_place=True, hot_idle_days=1)
    image = world.upload(age=timedelta(hours=47), size=400_000)
    assert (image.next_action, image.due_at) == (ImageAction.PROMOTE, NOW + timedelta(hours=1))
    world.now = NOW + timedelta(hours=1)

    report = world.sweep()

    assert (report.counts["promoted"], report.counts["archived"]) == (1, 1)
    assert report.actions[0]["detail"] == "in place"
    assert world.tier_of(image) is TierName.COLD
    world.assert_consistent()


def test_a_published_image_promoted_in_place_is_deleted_on_its_day(world: World) -> None:
    world.settings = lifecycle_settings(promote_in_place=True)
    image = world.upload(age=timedelta(days=3))
    world.sweep()
    world.change(image, published)

    world.now = NOW + timedelta(days=7)
    report = world.sweep()

    assert report.counts["deleted"] == 1
    assert world.objects() == set()
    world.assert_consistent()


def test_a_promotion_copies_when_the_tiers_store_on_different_offers() -> None:
    same = lifecycle_settings(promote_in_place=True)
    assert same.promotes_in_place()
    assert not lifecycle_settings(promote_in_place=False).promotes_in_place()
    for hot in ({"backend": "r2"}, {"backend": "s3", "offer": "s3_standard_ia"}):
        settings = lifecycle_settings(
            promote_in_place=True, temp={"backend": "s3"}, hot={"bucket": HOT, **hot}
        )
        assert not settings.promotes_in_place(), hot
    s3 = lifecycle_settings(promote_in_place=True, temp={"backend": "s3"}, hot={"backend": "s3"})
    assert s3.promotes_in_place()
