"""The repository contract: the same tests for DynamoDB (moto, the table created from
template.yaml) and the in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.adapters.table.memory import MemoryRepository
from shelflife.adapters.table.models import CAPTURE_SK, CaptureModel, image_pk
from shelflife.domain.audit import acting
from shelflife.domain.capture import Capture
from shelflife.domain.errors import Conflict, InvalidArgument, NoRoom, RecordNotFound
from shelflife.domain.records import (
    DAILY_COUNTERS,
    BucketRecord,
    BucketStatus,
    Change,
    ChangeAction,
    CleanupStatus,
    CleanupTask,
    DailyCounts,
    ImageAction,
    ImageRecord,
    ImageState,
    Location,
    RunKind,
    RunRecord,
    RunStatus,
)
from shelflife.domain.repository import Repository, single_write
from shelflife.domain.settings import BackendName, TierName
from tests.conftest import REGION
from tests.support.template import create_table_from_template

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TABLE = "shelflife-test"


@pytest.fixture(params=["dynamo", "memory"])
def repo(request: pytest.FixtureRequest) -> Iterator[Repository]:
    if request.param == "memory":
        yield MemoryRepository(due_shards=4)
        return
    with mock_aws():
        create_table_from_template(TABLE)
        yield DynamoRepository(TABLE, region=REGION, due_shards=4)


def bucket(name: str = "temp-a", tier: TierName = TierName.TEMP) -> BucketRecord:
    return BucketRecord(
        tier=tier, backend=BackendName.S3, name=name, capacity_bytes=1000, created_at=NOW
    )


def image(
    image_id: str = "img-1", *, bucket_name: str = "temp-a", **changes: object
) -> ImageRecord:
    fields: dict[str, object] = {
        "id": image_id,
        "owner": "alice",
        "location": Location(
            tier=TierName.TEMP, backend=BackendName.S3, bucket=bucket_name, key=f"{image_id}.jpg"
        ),
        "original_size": 500,
        "stored_size": 100,
        "original_sha256": "a" * 64,
        "stored_sha256": "b" * 64,
        "uploaded_at": NOW,
    }
    return ImageRecord.model_validate({**fields, **changes})


def counters(repo: Repository, name: str = "temp-a", tier: str = "temp") -> tuple[int, int]:
    found = repo.get_bucket(tier, name)
    return found.used_bytes, found.object_count


# ---- images and counters ----------------------------------------------------------


def test_every_field_of_an_image_round_trips(repo: Repository) -> None:
    repo.add_bucket(bucket())
    full = image(
        draft_id="d1",
        width=640,
        height=480,
        format="JPEG",
        last_accessed_at=NOW + timedelta(hours=1),
        access_count=3,
        published_at=NOW + timedelta(hours=2),
        placed_at=NOW + timedelta(hours=3),
        placed_access_count=2,
        move_to=Location(tier=TierName.HOT, backend=BackendName.R2, bucket="hot-a", key="k"),
        archive_skipped_at=NOW + timedelta(hours=4),
        next_action=ImageAction.PROMOTE,
        due_at=NOW + timedelta(hours=48),
        expires_at=NOW + timedelta(days=400),
    )

    with acting("ingest", reason="a reason", clock=lambda: NOW):
        written = repo.add_image(full)

    assert written.version == 1
    assert repo.get_image("img-1") == written
    # The repository stamps the change the write makes (the audit trail's).
    stamp = Change(action=ChangeAction.STORED, actor="ingest", at=NOW, reason="a reason")
    assert written.change == stamp
    assert written.model_dump(exclude={"version"}) == full.model_copy(
        update={"change": stamp}
    ).model_dump(exclude={"version"})


def test_adding_a_live_image_counts_it_in_its_bucket(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_image(image("a"))
    repo.add_image(image("b", stored_size=250))

    assert counters(repo) == (350, 2)


def test_redelivered_add_is_refused_and_counts_once(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_image(image())

    with pytest.raises(Conflict):
        repo.add_image(image())

    assert counters(repo) == (100, 1)


def test_rejected_and_pending_images_do_not_count(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_image(
        image(
            state=ImageState.REJECTED,
            location=None,
            rejection_reason="not an image",
            quarantine_key="quarantine/alice/img-1/x.jpg",
        )
    )
    repo.add_image(image("img-2", state=ImageState.PENDING))

    assert counters(repo) == (0, 0)
    assert repo.get_image("img-1").rejection_reason == "not an image"
    assert repo.get_image("img-1").quarantine_key == "quarantine/alice/img-1/x.jpg"


def test_image_in_an_unrecorded_bucket_is_refused_whole(repo: Repository) -> None:
    with pytest.raises(Conflict):
        repo.add_image(image(bucket_name="nowhere"))

    assert repo.find_image("img-1") is None


def test_a_move_moves_the_counters_in_the_same_write(repo: Repository) -> None:
    repo.add_bucket(bucket("temp-a"))
    repo.add_bucket(bucket("hot-a", TierName.HOT))
    stored = repo.add_image(image())
    moved = stored.model_copy(
        update={
            "location": Location(
                tier=TierName.HOT, backend=BackendName.R2, bucket="hot-a", key="img-1.jpg"
            )
        }
    )

    written = repo.replace_image(stored, moved)

    assert written.version == 2
    assert repo.get_image("img-1").location == moved.location
    assert counters(repo, "temp-a") == (0, 0)
    assert counters(repo, "hot-a", "hot") == (100, 1)


def test_an_activation_past_its_buckets_limit_is_refused_whole(repo: Repository) -> None:
    """Two placements chose temp-a on the same counters (100 bytes in it, a limit of
    250): the first activation fits, the second would pass the limit and writes nothing."""
    repo.add_bucket(bucket())
    first = repo.add_image(image("img-1", state=ImageState.PENDING))
    second = repo.add_image(image("img-2", state=ImageState.PENDING))
    live = {"state": ImageState.ACTIVE}
    repo.replace_image(first, first.model_copy(update=live), within={"temp-a": 150})
    assert counters(repo) == (100, 1)  # an empty bucket takes anything

    with pytest.raises(NoRoom) as refused:
        repo.replace_image(
            second,
            second.model_copy(update=live),
            counts=DailyCounts(day=NOW.date(), counts={"uploaded": 1}),
            within={"temp-a": 199, "elsewhere": 0},
        )

    assert refused.value.bucket == "temp-a"
    assert isinstance(refused.value, Conflict)
    assert counters(repo) == (100, 1)
    assert repo.get_image("img-2") == second
    assert repo.daily_counts(NOW.date()) == []
    written = repo.replace_image(second, second.model_copy(update=live), within={"temp-a": 200})
    assert written.state is ImageState.ACTIVE
    assert counters(repo) == (200, 2)
    # A limit only holds back bytes coming in: the photo can still leave.
    repo.replace_image(
        written, written.model_copy(update={"state": ImageState.DELETED}), within={"temp-a": 0}
    )
    assert counters(repo) == (100, 1)


def test_a_stale_write_is_refused_and_changes_nothing(repo: Repository) -> None:
    repo.add_bucket(bucket())
    stored = repo.add_image(image())
    repo.replace_image(stored, stored.model_copy(update={"access_count": 1}))

    with pytest.raises(Conflict):
        repo.replace_image(stored, stored.model_copy(update={"state": ImageState.DELETED}))

    assert repo.get_image("img-1").state is ImageState.ACTIVE
    assert counters(repo) == (100, 1)


def test_a_write_that_moves_no_counter_is_conditional_on_its_version_too(
    repo: Repository,
) -> None:
    # Such a write is the item's alone (``single_write``: no transaction on DynamoDB);
    # it is refused on a stale version as the transaction is.
    repo.add_bucket(bucket())
    stored = repo.add_image(image())
    assert single_write(stored, stored.model_copy(update={"access_count": 1}), None)
    seen = repo.replace_image(stored, stored.model_copy(update={"access_count": 1}))
    with pytest.raises(Conflict):
        repo.replace_image(stored, stored.model_copy(update={"access_count": 5}))
    assert repo.get_image("img-1").access_count == seen.access_count == 1
    pending = image("img-2", state=ImageState.PENDING)
    assert single_write(None, pending, None)
    claimed = repo.add_image(pending)
    with pytest.raises(Conflict):  # a second claim of the same id
        repo.add_image(pending)
    repo.replace_image(claimed, claimed.model_copy(update={"stored_size": 7}))
    with pytest.raises(Conflict):  # removing what was read before that write
        repo.remove_image(claimed)
    assert repo.get_image("img-2").stored_size == 7
    assert counters(repo) == (100, 1)


def test_soft_delete_uncounts_and_a_second_one_is_refused(repo: Repository) -> None:
    repo.add_bucket(bucket())
    stored = repo.add_image(image())
    deleted = stored.model_copy(
        update={"state": ImageState.DELETED, "expires_at": NOW + timedelta(days=7)}
    )

    repo.replace_image(stored, deleted)
    with pytest.raises(Conflict):
        repo.replace_image(stored, deleted)

    assert counters(repo) == (0, 0)


def test_removing_a_record_uncounts_a_live_image_only(repo: Repository) -> None:
    repo.add_bucket(bucket())
    live = repo.add_image(image("live"))
    gone = repo.add_image(image("gone"))
    gone = repo.replace_image(gone, gone.model_copy(update={"state": ImageState.DELETED}))

    repo.remove_image(live)
    repo.remove_image(gone)

    assert repo.find_image("live") is None
    assert repo.find_image("gone") is None
    assert counters(repo) == (0, 0)
    with pytest.raises(RecordNotFound):
        repo.get_image("live")


def test_replace_checks_its_arguments(repo: Repository) -> None:
    repo.add_bucket(bucket())
    stored = repo.add_image(image())

    with pytest.raises(InvalidArgument):
        repo.replace_image(image(), image())  # never read: no version
    with pytest.raises(InvalidArgument):
        repo.replace_image(stored, stored.model_copy(update={"id": "other"}))
    with pytest.raises(InvalidArgument):
        repo.add_image(stored)  # already has a version


# ---- queries ----------------------------------------------------------------------


def test_images_by_owner_newest_first_in_pages(repo: Repository) -> None:
    repo.add_bucket(bucket())
    for i in range(25):
        repo.add_image(image(f"img-{i:02d}", uploaded_at=NOW + timedelta(minutes=i)))
    repo.add_image(image("bob-1", owner="bob"))

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = repo.images_by_owner("alice", limit=10, cursor=cursor)
        seen += [found.id for found in page.items]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor

    assert seen == [f"img-{i:02d}" for i in reversed(range(25))]
    assert pages in (3, 4)  # DynamoDB may hand back an empty last page
    assert [found.id for found in repo.images_by_owner("bob").items] == ["bob-1"]


def test_due_index_holds_only_what_is_due(repo: Repository) -> None:
    repo.add_bucket(bucket())
    for i in range(40):
        repo.add_image(
            image(f"due-{i}", next_action=ImageAction.PROMOTE, due_at=NOW - timedelta(minutes=i))
        )
    repo.add_image(image("later", next_action=ImageAction.ARCHIVE, due_at=NOW + timedelta(days=1)))
    repo.add_image(image("unscheduled"))

    found: list[ImageRecord] = []
    for shard in range(repo.due_shards):
        cursor = None
        while True:
            page = repo.due_images(shard, NOW, limit=7, cursor=cursor)
            found += page.items
            assert [item.due_at for item in page.items] == sorted(
                item.due_at for item in page.items if item.due_at
            )
            if page.cursor is None:
                break
            cursor = page.cursor

    assert sorted(item.id for item in found) == sorted(f"due-{i}" for i in range(40))


def test_a_page_follows_on_after_its_last_item_left_the_listing(repo: Repository) -> None:
    # What a sweep does: read a page, reschedule what it read, ask for the next page.
    repo.add_bucket(bucket())
    for i in range(6):
        repo.add_image(image(f"due-{i}", next_action=ImageAction.DELETE, due_at=NOW))
    done: list[str] = []
    for shard in range(repo.due_shards):
        cursor = None
        while True:
            page = repo.due_images(shard, NOW, limit=1, cursor=cursor)
            for item in page.items:
                repo.replace_image(
                    item, item.model_copy(update={"next_action": None, "due_at": None})
                )
                done.append(item.id)
            if page.cursor is None:
                break
            cursor = page.cursor

    assert sorted(done) == [f"due-{i}" for i in range(6)]


def test_clearing_the_schedule_leaves_the_due_index(repo: Repository) -> None:
    repo.add_bucket(bucket())
    stored = repo.add_image(image(next_action=ImageAction.DELETE, due_at=NOW - timedelta(hours=1)))

    repo.replace_image(stored, stored.model_copy(update={"next_action": None, "due_at": None}))

    assert all(not repo.due_images(shard, NOW).items for shard in range(repo.due_shards))


def every_page(repo: Repository, bucket_name: str, **query: Any) -> list[str]:
    """The ids of every page of a bucket's images, in the order read."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = repo.images_in_bucket("temp", bucket_name, limit=2, cursor=cursor, **query)
        assert len(page.items) <= 2
        ids += [i.id for i in page.items]
        if page.cursor is None:
            return ids
        cursor = page.cursor


def test_images_in_a_bucket_live_only_each_once(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_bucket(bucket("temp-b"))
    for day in (3, 1, 2, 5, 4):
        repo.add_image(image(f"day-{day}", uploaded_at=NOW + timedelta(days=day)))
    repo.add_image(image("elsewhere", bucket_name="temp-b"))
    repo.add_image(image("pending", state=ImageState.PENDING))
    deleted = repo.add_image(image("deleted"))
    repo.replace_image(deleted, deleted.model_copy(update={"state": ImageState.DELETED}))
    moved = repo.add_image(image("moved"))
    away = moved.location.model_copy(update={"bucket": "temp-b"})  # type: ignore[union-attr]
    repo.replace_image(moved, moved.model_copy(update={"location": away}))
    repo.add_image(image("published", uploaded_at=NOW, published_at=NOW))

    # In no particular order (a scan on DynamoDB): every one exactly once.
    found = every_page(repo, "temp-a")
    assert sorted(found) == ["day-1", "day-2", "day-3", "day-4", "day-5", "published"]
    older = every_page(repo, "temp-a", uploaded_before=NOW + timedelta(days=2))
    assert sorted(older) == ["day-1", "published"]
    assert sorted(every_page(repo, "temp-b")) == ["elsewhere", "moved"]
    # A cursor names its scan: another bucket's, or every image's, is refused.
    cursor = repo.images_in_bucket("temp", "temp-a", limit=1).cursor
    assert cursor is not None
    with pytest.raises(InvalidArgument, match="cursor"):
        repo.images_in_bucket("temp", "temp-b", cursor=cursor)
    with pytest.raises(InvalidArgument, match="cursor"):
        repo.all_images(cursor=cursor)


def test_every_image_in_any_state_each_once(repo: Repository) -> None:
    repo.add_bucket(bucket())
    for n in range(5):
        repo.add_image(image(f"img-{n}", owner=f"user-{n % 2}"))
    deleted = repo.add_image(image("deleted"))
    repo.replace_image(deleted, deleted.model_copy(update={"state": ImageState.DELETED}))
    repo.add_image(image("pending", state=ImageState.PENDING))

    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = repo.all_images(limit=2, cursor=cursor)
        assert len(page.items) <= 2
        ids += [i.id for i in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(ids) == ["deleted", *(f"img-{n}" for n in range(5)), "pending"]
    with pytest.raises(InvalidArgument, match="cursor"):
        repo.all_images(cursor="not a cursor")


def test_query_arguments_are_checked(repo: Repository) -> None:
    with pytest.raises(InvalidArgument):
        repo.due_images(repo.due_shards, NOW)
    with pytest.raises(InvalidArgument):
        repo.images_by_owner("alice", limit=0)
    with pytest.raises(InvalidArgument, match="cursor"):
        repo.images_by_owner("alice", cursor="not a cursor")
    with pytest.raises(InvalidArgument, match="cursor"):
        repo.images_in_bucket("temp", "temp-a", cursor="not a cursor")


# ---- buckets ----------------------------------------------------------------------


def test_buckets_are_listed_by_tier_in_one_query(repo: Repository) -> None:
    repo.add_bucket(bucket("temp-b"))
    repo.add_bucket(bucket("temp-a"))
    repo.add_bucket(bucket("hot-a", TierName.HOT))

    assert [found.name for found in repo.list_buckets("temp")] == ["temp-a", "temp-b"]
    assert [found.name for found in repo.list_buckets()] == ["hot-a", "temp-a", "temp-b"]


def test_a_bucket_is_recorded_once(repo: Repository) -> None:
    repo.add_bucket(bucket())
    with pytest.raises(Conflict):
        repo.add_bucket(bucket())


def test_bucket_status_and_counter_repair(repo: Repository) -> None:
    repo.add_bucket(bucket())

    repo.set_bucket_status("temp", "temp-a", BucketStatus.FULL)
    repo.set_bucket_counters("temp", "temp-a", used_bytes=42, object_count=2)

    found = repo.get_bucket("temp", "temp-a")
    assert found.status is BucketStatus.FULL
    assert (found.used_bytes, found.object_count) == (42, 2)
    with pytest.raises(RecordNotFound):
        repo.set_bucket_status("temp", "missing", BucketStatus.FULL)
    with pytest.raises(RecordNotFound):
        repo.get_bucket("temp", "missing")


def test_a_counter_repair_based_on_stale_counters_is_refused(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_image(image())  # the counters move after the repair read them at (0, 0)

    with pytest.raises(Conflict):
        repo.set_bucket_counters("temp", "temp-a", used_bytes=7, object_count=1, expected=(0, 0))

    assert counters(repo) == (100, 1)
    repo.set_bucket_counters("temp", "temp-a", used_bytes=7, object_count=1, expected=(100, 1))
    assert counters(repo) == (7, 1)
    with pytest.raises(RecordNotFound):
        repo.set_bucket_counters("temp", "missing", used_bytes=0, object_count=0, expected=(0, 0))


def test_images_are_found_many_at_once(repo: Repository) -> None:
    repo.add_bucket(bucket())
    stored = [repo.add_image(image(f"img-{n}")) for n in range(150)]  # more than one batch

    found = repo.find_images([f"img-{n}" for n in range(0, 150, 2)] + ["nobody", "img-0"])

    assert found == {record.id: record for record in stored[::2]}
    assert repo.find_images([]) == {}


# ---- runs -------------------------------------------------------------------------


def test_runs_newest_first_and_updated_in_place(repo: Repository) -> None:
    for day in range(3):
        repo.save_run(
            RunRecord(kind=RunKind.LIFECYCLE, id=f"run-{day}", started_at=NOW + timedelta(days=day))
        )
    repo.save_run(RunRecord(kind=RunKind.CAPACITY, id="cap", started_at=NOW))
    finished = RunRecord(
        kind=RunKind.LIFECYCLE,
        id="run-2",
        started_at=NOW + timedelta(days=2),
        finished_at=NOW + timedelta(days=2, minutes=1),
        status=RunStatus.COMPLETED,
        counts={"promoted": 3, "failed": 0},
        cursor="next",
        details={"drift": [{"kind": "orphaned", "key": "images/x/y.jpg"}], "fix": True},
        expires_at=NOW + timedelta(days=32),
    )

    repo.save_run(finished)

    recent = repo.recent_runs(RunKind.LIFECYCLE, limit=2)
    assert [run.id for run in recent] == ["run-2", "run-1"]
    assert recent[0] == finished
    assert [run.id for run in repo.recent_runs(RunKind.CAPACITY)] == ["cap"]


def test_a_run_is_found_by_its_start_and_id_and_runs_are_listed_since_a_time(
    repo: Repository,
) -> None:
    for day in range(4):
        repo.save_run(
            RunRecord(kind=RunKind.LIFECYCLE, id=f"run-{day}", started_at=NOW + timedelta(days=day))
        )

    found = repo.find_run(RunKind.LIFECYCLE, NOW + timedelta(days=1), "run-1")

    assert found is not None
    assert found.id == "run-1"
    assert repo.find_run(RunKind.LIFECYCLE, NOW, "run-1") is None  # another start
    assert repo.find_run(RunKind.CAPACITY, NOW + timedelta(days=1), "run-1") is None
    since = repo.recent_runs(RunKind.LIFECYCLE, since=NOW + timedelta(days=2))
    assert [run.id for run in since] == ["run-3", "run-2"]


def test_a_move_in_flight_is_not_counted_until_the_record_points_there(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_bucket(bucket("hot-a", TierName.HOT))
    stored = repo.add_image(image())
    target = Location(tier=TierName.HOT, backend=BackendName.S3, bucket="hot-a", key="img-1.jpg")

    claimed = repo.replace_image(stored, stored.model_copy(update={"move_to": target}))

    assert (counters(repo), counters(repo, "hot-a", "hot")) == ((100, 1), (0, 0))
    repo.replace_image(claimed, claimed.model_copy(update={"location": target, "move_to": None}))
    assert (counters(repo), counters(repo, "hot-a", "hot")) == ((0, 0), (100, 1))


# ---- cleanup tasks ----------------------------------------------------------------


def task(event_id: str, status: CleanupStatus, *, minutes: int = 0) -> CleanupTask:
    return CleanupTask(
        event_id=event_id,
        image_id="img-1",
        status=status,
        attempts=2,
        error="Throttled: b2: slow down",
        first_failed_at=NOW,
        updated_at=NOW + timedelta(minutes=minutes),
        expires_at=NOW + timedelta(days=14),
    )


def test_cleanup_tasks_round_trip_and_are_listed_newest_first(repo: Repository) -> None:
    for n, status in enumerate(
        [CleanupStatus.RETRYING, CleanupStatus.FAILED, CleanupStatus.COMPLETED]
    ):
        repo.save_cleanup_task(task(f"event-{n}", status, minutes=n))
    updated = task("event-0", CleanupStatus.FAILED, minutes=10)

    repo.save_cleanup_task(updated)

    assert repo.find_cleanup_task("event-0") == updated
    assert repo.find_cleanup_task("event-9") is None
    assert [t.event_id for t in repo.cleanup_tasks()] == ["event-0", "event-2", "event-1"]
    assert [t.event_id for t in repo.cleanup_tasks(status=CleanupStatus.FAILED)] == [
        "event-0",
        "event-1",
    ]
    recent = repo.cleanup_tasks(
        status=CleanupStatus.FAILED, updated_since=NOW + timedelta(minutes=5)
    )
    assert [t.event_id for t in recent] == ["event-0"]


# ---- daily counts -----------------------------------------------------------------


def test_daily_counts_add_up_per_day_from_a_given_day(repo: Repository) -> None:
    today = NOW.date()
    repo.add_daily_counts(today - timedelta(days=2), {"uploaded": 1})
    repo.add_daily_counts(today, {"uploaded": 2, "rejected": 1})
    repo.add_daily_counts(today, {"uploaded": 3, "duplicates": 0, "published_within_7d": 2})
    days = repo.daily_counts(today - timedelta(days=1))
    assert [day.day for day in days] == [today]
    assert days[0].counts == {
        **dict.fromkeys(DAILY_COUNTERS, 0),
        "uploaded": 5,
        "rejected": 1,
        "published_within_7d": 2,
    }
    assert [day.counts["uploaded"] for day in repo.daily_counts(today - timedelta(days=7))] == [
        1,
        5,
    ]


def test_unknown_daily_counter_is_refused(repo: Repository) -> None:
    with pytest.raises(InvalidArgument, match="unknown daily counters"):
        repo.add_daily_counts(NOW.date(), {"uplaoded": 1})
    assert repo.daily_counts(NOW.date()) == []


def test_an_image_write_adds_its_daily_counts_in_the_same_write(repo: Repository) -> None:
    # Issue 19: ingest counts an upload with the write that records it, so a crash or a
    # redelivery can neither lose the count nor make it twice.
    repo.add_bucket(bucket())
    day = NOW.date()
    pending = repo.add_image(
        image(state=ImageState.PENDING), counts=DailyCounts(day=day, counts={"uploaded": 0})
    )
    live = repo.replace_image(
        pending,
        pending.model_copy(update={"state": ImageState.ACTIVE}),
        counts=DailyCounts(day=day, counts={"uploaded": 1}),
    )

    with pytest.raises(Conflict):  # refused: counts nothing either
        repo.replace_image(
            pending,
            pending.model_copy(update={"state": ImageState.ACTIVE}),
            counts=DailyCounts(day=day, counts={"uploaded": 1}),
        )
    with pytest.raises(Conflict):
        repo.add_image(image(), counts=DailyCounts(day=day, counts={"rejected": 1}))
    with pytest.raises(InvalidArgument, match="unknown daily counters"):
        repo.replace_image(live, live, counts=DailyCounts(day=day, counts={"uplaoded": 1}))

    (today,) = repo.daily_counts(day)
    assert (today.counts["uploaded"], today.counts["rejected"]) == (1, 0)
    assert counters(repo) == (100, 1)


def test_capture_facts_are_kept_beside_the_record_and_expire_with_it(repo: Repository) -> None:
    facts = Capture(camera_make="NIKON", iso=64, f_number=5.9, labels={"trip": "rome"})
    assert repo.find_capture("img-1") is None
    repo.put_capture("img-1", facts)
    repo.put_capture("img-1", facts)  # again: the same
    assert repo.find_capture("img-1") == facts
    repo.expire_capture("img-1", NOW + timedelta(days=30))
    assert repo.find_capture("img-1") == facts  # until the TTL removes it
    repo.expire_capture("img-2", NOW)  # none there: done, and nothing made
    assert repo.find_capture("img-2") is None
    assert capture_expiry(repo, "img-1") == NOW + timedelta(days=30)
    repo.keep_capture("img-1")  # live again: kept for good
    assert capture_expiry(repo, "img-1") is None
    assert repo.find_capture("img-1") == facts
    repo.keep_capture("img-2")  # none there: done, and nothing made
    assert repo.find_capture("img-2") is None
    # Not an image record: no listing shows it.
    assert repo.all_images(limit=10).items == []


def capture_expiry(repo: Repository, image_id: str) -> datetime | None:
    """When the table's TTL removes the capture facts (None: never), as each adapter
    keeps it."""
    if isinstance(repo, MemoryRepository):
        return repo.capture_expiry.get(image_id)
    assert isinstance(repo, DynamoRepository)
    return CaptureModel.get(image_pk(image_id), CAPTURE_SK).expires_at
