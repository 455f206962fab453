"""The audit log contract (issue 22, part 1): the same tests for the DynamoDB audit
table (moto, created from template.yaml) and the in-memory twin; and the change each
write of an image stamps (``audit.change_action``), through both repositories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from shelflife.adapters.table.audit import DynamoAuditLog
from shelflife.adapters.table.dynamo import DynamoRepository, stream_change, stream_record
from shelflife.adapters.table.memory import MemoryAuditLog, MemoryRepository
from shelflife.domain.audit import (
    UNKNOWN,
    AuditEntry,
    AuditLog,
    AuditPlace,
    AuditQuery,
    acting,
    change_action,
    duplicate_entry,
    entered,
    entry_of_change,
)
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.records import ChangeAction, ImageState, Location
from shelflife.domain.repository import Repository
from shelflife.domain.settings import BackendName, TierName
from tests.conftest import REGION
from tests.contract.test_repository import bucket, image
from tests.support.template import create_table_from_template

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["dynamo", "memory"])
def log(request: pytest.FixtureRequest) -> Iterator[AuditLog]:
    if request.param == "memory":
        yield MemoryAuditLog()
        return
    with mock_aws():
        create_table_from_template("shelflife-test-audit", logical="AuditTable")
        yield DynamoAuditLog("shelflife-test-audit", region=REGION)


@pytest.fixture(params=["dynamo", "memory"])
def repo(request: pytest.FixtureRequest) -> Iterator[Repository]:
    if request.param == "memory":
        yield MemoryRepository()
        return
    with mock_aws():
        create_table_from_template("shelflife-test")
        yield DynamoRepository("shelflife-test", region=REGION)


def entry(
    image_id: str, at: datetime, n: int, *, actor: str = "ingest", action: str = "stored"
) -> AuditEntry:
    return AuditEntry(
        image_id=image_id,
        seq=f"{at:%Y-%m-%dT%H:%M:%S.%fZ}#{n:010d}",
        at=at,
        owner="alice",
        actor=actor,
        action=ChangeAction(action),
        after=AuditPlace(tier=TierName.TEMP, backend="s3", bucket="temp-a"),
        expires_at=at + timedelta(days=365),
    )


def every(log: AuditLog, query: AuditQuery, limit: int) -> list[AuditEntry]:
    found: list[AuditEntry] = []
    cursor = None
    while True:
        page = log.search(query, limit=limit, cursor=cursor)
        found += page.items
        if page.cursor is None:
            return found
        cursor = page.cursor


# ---- the log -----------------------------------------------------------------------


def test_the_same_entry_twice_is_one(log: AuditLog) -> None:
    first = entry("img-1", NOW, 1)
    log.record(first)
    log.record(first)
    assert log.history("img-1", limit=10, cursor=None).items == [first]


def test_history_is_oldest_first_a_page_at_a_time(log: AuditLog) -> None:
    written = [entry("img-1", NOW + timedelta(minutes=n), n + 1) for n in range(5)]
    for item in reversed(written):
        log.record(item)
    log.record(entry("img-2", NOW, 1))
    pages, cursor = [], None
    while True:
        page = log.history("img-1", limit=2, cursor=cursor)
        pages += page.items
        if page.cursor is None:
            break
        cursor = page.cursor
    assert pages == written
    first = log.history("img-1", limit=2, cursor=None)
    assert first.cursor is not None
    with pytest.raises(InvalidArgument):
        log.history("img-2", limit=2, cursor=first.cursor)  # another image's cursor
    with pytest.raises(InvalidArgument):
        log.history("img-1", limit=2, cursor="garbage")


def test_a_search_finds_every_match_once_whatever_the_page_size(log: AuditLog) -> None:
    days = [NOW + timedelta(days=d, hours=h) for d in range(3) for h in (0, 5)]
    for n, at in enumerate(days):
        log.record(entry(f"img-{n % 2}", at, n + 1, actor="lifecycle" if n % 3 else "ingest"))
    query = AuditQuery(since=NOW, until=NOW + timedelta(days=2, hours=6))
    for limit in (1, 2, 5, 100):
        found = every(log, query, limit)
        assert sorted(e.at for e in found) == days  # each once, none missed
    page = log.search(query, limit=100, cursor=None)
    assert [e.at for e in page.items] == days  # a page is in time order
    inside = AuditQuery(since=NOW + timedelta(hours=1), until=NOW + timedelta(days=1, hours=1))
    assert sorted(e.at for e in every(log, inside, 1)) == [days[1], days[2]]
    only = AuditQuery(since=NOW, until=NOW + timedelta(days=3), actor="ingest")
    assert {e.actor for e in every(log, only, 2)} == {"ingest"}
    assert len(every(log, only, 2)) == 2
    moved = AuditQuery(since=NOW, until=NOW + timedelta(days=3), action=ChangeAction.MOVED)
    assert every(log, moved, 2) == []
    one = AuditQuery(since=NOW, until=NOW + timedelta(days=3), image_id="img-1")
    assert {e.image_id for e in every(log, one, 2)} == {"img-1"}

    first = log.search(query, limit=1, cursor=None)
    assert first.cursor is not None
    elsewhere = AuditQuery(since=NOW, until=NOW + timedelta(days=3), actor="lifecycle")
    with pytest.raises(InvalidArgument):
        log.search(elsewhere, limit=1, cursor=first.cursor)
    # A later window, the same filters (``until`` defaults to now): the cursor goes on.
    later = AuditQuery(since=NOW, until=NOW + timedelta(days=4))
    assert log.search(later, limit=1, cursor=first.cursor).items != first.items
    with pytest.raises(InvalidArgument):
        log.search(query, limit=1, cursor="garbage")


def test_a_search_is_bounded_and_ordered_in_time() -> None:
    with pytest.raises(InvalidArgument):
        AuditQuery(since=NOW, until=NOW - timedelta(seconds=1))
    with pytest.raises(InvalidArgument):
        AuditQuery(since=NOW, until=NOW + timedelta(days=400))
    with pytest.raises(InvalidArgument):
        AuditQuery(since=NOW.replace(tzinfo=None), until=NOW)


def test_a_duplicate_upload_is_found_entered_at_another_time(log: AuditLog) -> None:
    live = image(state=ImageState.ACTIVE)
    first = duplicate_entry(live, "incoming/alice/a.jpg", NOW, retention_days=30)
    assert not entered(log, first)
    log.record(first)
    later = duplicate_entry(
        live, "incoming/alice/a.jpg", NOW + timedelta(hours=1), retention_days=30
    )
    assert entered(log, later)
    other = duplicate_entry(live, "incoming/alice/b.jpg", NOW, retention_days=30)
    assert not entered(log, other)


# ---- what a write stamps -----------------------------------------------------------

HOT = Location(tier=TierName.HOT, backend=BackendName.S3, bucket="hot-a", key="img-1-x.jpg")


@pytest.mark.parametrize(
    ("before", "after", "action"),
    [
        (None, {"state": ImageState.PENDING}, None),
        (None, {}, ChangeAction.STORED),
        ({"state": ImageState.PENDING}, {}, ChangeAction.STORED),
        (None, {"state": ImageState.REJECTED, "location": None}, ChangeAction.QUARANTINED),
        ({}, {"location": HOT}, ChangeAction.MOVED),
        ({}, {"promoted_at": NOW}, ChangeAction.MOVED),
        ({}, {"published_at": NOW}, ChangeAction.PUBLISHED),
        ({}, {"archive_skipped_at": NOW}, ChangeAction.ARCHIVE_SKIPPED),
        ({}, {"state": ImageState.DELETED}, ChangeAction.DELETED),
        ({"state": ImageState.DELETED}, {"state": ImageState.DELETED}, None),
        ({}, {"state": ImageState.LOST}, ChangeAction.MARKED_LOST),
        ({"state": ImageState.LOST}, {}, ChangeAction.RESTORED),
        ({"state": ImageState.DELETED}, {"state": ImageState.PENDING}, None),
        ({}, {"access_count": 3, "last_accessed_at": NOW}, None),
        ({}, {"move_to": HOT}, None),
    ],
)
def test_each_write_is_stamped_with_what_it_does(
    before: dict[str, Any] | None, after: dict[str, Any], action: ChangeAction | None
) -> None:
    previous = None if before is None else image("img-1", **before)
    assert change_action(previous, image("img-1", **after)) is action


def test_the_repository_stamps_the_actor_on_that_write_only(repo: Repository) -> None:
    repo.add_bucket(bucket())
    repo.add_bucket(bucket("hot-a", TierName.HOT))
    at = NOW + timedelta(hours=1)
    with acting("ingest", clock=lambda: at):
        stored = repo.add_image(image())
    assert stored.change is not None
    assert (stored.change.action, stored.change.actor, stored.change.at) == (
        ChangeAction.STORED,
        "ingest",
        at,
    )
    assert repo.get_image("img-1").change == stored.change
    with acting("user:alice"):
        viewed = repo.replace_image(stored, stored.model_copy(update={"access_count": 1}))
    assert viewed.change is None  # a view is no change of the trail
    assert repo.get_image("img-1").change is None
    with acting("lifecycle", reason="for the test"):
        moved = repo.replace_image(viewed, viewed.model_copy(update={"location": HOT}))
    assert moved.change is not None
    assert (moved.change.actor, moved.change.reason) == ("lifecycle", "for the test")
    # Outside any block the actor is unknown: the fault campaign looks for it.
    unknown = repo.replace_image(moved, moved.model_copy(update={"state": ImageState.DELETED}))
    assert unknown.change is not None
    assert unknown.change.actor == UNKNOWN


def test_a_stamped_write_is_one_entry_from_the_stream() -> None:
    old = image(version=3)
    with acting("lifecycle", clock=lambda: NOW):
        repo = MemoryRepository()
        repo.add_bucket(bucket())
        repo.add_bucket(bucket("hot-a", TierName.HOT))
        live = repo.add_image(image())
        moved = repo.replace_image(live, live.model_copy(update={"location": HOT}))
    made = entry_of_change(*repo.stream[-1], retention_days=30)
    assert made is not None
    assert (made.action, made.actor, made.reason) == (ChangeAction.MOVED, "lifecycle", "promote")
    assert made.before is not None
    assert made.after is not None
    assert (made.before.bucket, made.after.bucket) == ("temp-a", "hot-a")
    assert made.seq.endswith(f"#{moved.version:010d}")
    # Through the stream record's DynamoDB shape, the same entry.
    change = stream_change(stream_record("e-1", *repo.stream[-1]))
    again = entry_of_change(change.old, change.new, retention_days=30)
    assert again == made
    # A record the TTL removes makes none: its deletion was entered.
    assert entry_of_change(old, None, retention_days=30) is None
