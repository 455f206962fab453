"""functions/imports/app.py under moto, driven by the events in events/imports/."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from shelflife.adapters.backends import S3Backend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.records import ImageState, RunKind
from shelflife.domain.settings import TierName
from shelflife.domain.storage import BucketPolicy
from tests.conftest import REGION
from tests.support.corpus import corpus_file
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.template import create_table_from_template
from tests.unit.test_ingest_handler import ENVIRONMENT, TABLE, TEMP

HOT = ENVIRONMENT["SHELFLIFE_HOT_BUCKET"]
SOURCE = "old-photos"  # the events' bucket
FILES = {
    "users/alice/concert.jpg": "photos/concert.jpg",
    "users/alice/again/concert.jpg": "photos/concert.jpg",
    "users/bob/320x240.jpg": "photos/320x240.jpg",
    "users/bob/drawing.svg": "formats/check.svg",
    "elsewhere/low-contrast.jpg": "photos/low-contrast.jpg",  # outside the prefix
}


@pytest.fixture
def app(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    create_table_from_template(TABLE)
    s3 = S3Backend(region=REGION)
    for name, tier in ((TEMP, "temp"), (HOT, "hot")):
        s3.create_bucket(name, BucketPolicy(tier=tier))
    s3.create_bucket(SOURCE, BucketPolicy(tier="hot"))
    for key, name in FILES.items():
        s3.put(SOURCE, key, corpus_file(name), content_type="image/jpeg")
    sys.modules.pop("functions.imports.app", None)
    yield importlib.import_module("functions.imports.app")
    sys.modules.pop("functions.imports.app", None)


def source_objects() -> dict[str, bytes]:
    s3 = S3Backend(region=REGION)
    return {info.key: s3.get(SOURCE, info.key).data for info in s3.iter_objects(SOURCE)}


def test_a_dry_run_then_a_run_then_its_continuation(app: ModuleType) -> None:
    before = source_objects()
    dry = app.lambda_handler(load_event("imports/dry-run.json"), FakeLambdaContext())
    assert dry["dry_run"] is True
    assert dry["complete"] is True
    assert dry["counts"]["listed"] == 4  # the prefix's
    assert dry["counts"]["to_import"] == 3
    assert dry["counts"]["unreadable"] == 1
    assert [p["key"] for p in dry["problems"]] == ["users/bob/drawing.svg"]

    run = app.lambda_handler(load_event("imports/run.json"), FakeLambdaContext())
    assert run["complete"] is True
    assert run["counts"]["imported"] == 2
    assert run["counts"]["already_present"] == 1
    repository = DynamoRepository(TABLE, region=REGION)
    images = [i for i in repository.all_images().items if i.state is ImageState.ACTIVE]
    assert sorted(i.owner for i in images) == ["alice", "bob"]
    assert {i.tier for i in images} == {TierName.HOT}  # written just now: not idle yet
    hot = {info.key for info in S3Backend(region=REGION).iter_objects(HOT)}
    assert hot == {i.location.key for i in images if i.location}
    assert source_objects() == before, "the source is only read"

    event = load_event("imports/continue.json")
    event["run_id"] = run["run_id"]
    again = app.lambda_handler(event, FakeLambdaContext())
    assert again["counts"] == run["counts"], "a finished run answers its report"
    runs = repository.recent_runs(RunKind.IMPORT)
    assert {r.id for r in runs} == {dry["run_id"], run["run_id"]}


def test_a_run_short_of_time_is_continued_by_its_run_id(app: ModuleType) -> None:
    context = FakeLambdaContext()
    event = load_event("imports/run.json")
    del event["max_seconds"]
    remaining = iter([60_000, 60_000, 1_000] + [0] * 100)
    context.get_remaining_time_in_millis = lambda: next(remaining)  # type: ignore[method-assign]
    first = app.lambda_handler(event, context)
    assert first["complete"] is False
    assert any(first["run_id"] in line for line in first["recommendations"])
    follow = load_event("imports/continue.json")
    follow["run_id"] = first["run_id"]
    done = app.lambda_handler(follow, FakeLambdaContext())
    assert done["complete"] is True
    assert (done["counts"]["imported"], done["counts"]["already_present"]) == (2, 1)


def test_a_wrong_event_is_refused_with_its_reason(app: ModuleType) -> None:
    event = load_event("imports/run.json")
    event["owner_pattern"] = "^users/"
    with pytest.raises(InvalidArgument, match="group named owner"):
        app.lambda_handler(event, FakeLambdaContext())
