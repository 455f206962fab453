"""functions/capacity/app.py under moto, driven by the events in events/capacity/."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest

from shelflife.adapters.backends import S3Backend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.records import BucketStatus, ImageRecord, ImageState, Location, RunKind
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import BucketPolicy
from tests.conftest import REGION
from tests.support.emf import metric_points
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.template import create_table_from_template
from tests.unit.test_ingest_handler import ENVIRONMENT, TABLE, TEMP

HOT = ENVIRONMENT["SHELFLIFE_HOT_BUCKET"]


@pytest.fixture
def app(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHELFLIFE_TEMP_QUOTA_BYTES", "1000")
    create_table_from_template(TABLE)
    s3 = S3Backend(region=REGION)
    for name, tier in ((TEMP, "temp"), (HOT, "hot")):
        s3.create_bucket(name, BucketPolicy(tier=tier))
    sys.modules.pop("functions.capacity.app", None)
    yield importlib.import_module("functions.capacity.app")
    sys.modules.pop("functions.capacity.app", None)


def repository() -> DynamoRepository:
    return DynamoRepository(TABLE, region=REGION)


def test_the_schedule_reports_every_bucket_and_publishes_its_usage(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    app.lambda_handler(load_event("capacity/scheduled.json"), FakeLambdaContext())
    repository().set_bucket_counters("temp", TEMP, used_bytes=400, object_count=4)
    capsys.readouterr()

    answer = app.lambda_handler(load_event("capacity/scheduled.json"), FakeLambdaContext())

    by_name = {bucket["name"]: bucket for bucket in answer["buckets"]}
    assert by_name[TEMP]["percent"] == 40.0
    assert by_name[TEMP]["object_count"] == 4
    assert set(by_name) == {TEMP, HOT, ENVIRONMENT["SHELFLIFE_COLD_BUCKET"]}
    points = metric_points(capsys.readouterr().out)
    temp_usage = [
        p for p in points if p.name == "BucketUsedPercent" and p.dimensions.get("bucket") == TEMP
    ]
    assert [(p.dimensions["tier"], p.value) for p in temp_usage] == [("temp", 40.0)]
    tiers = {p.dimensions["tier"]: p.value for p in points if p.name == "TierUsedPercent"}
    assert tiers["temp"] == 40.0
    assert {p.name: p.value for p in points}["BucketsMarkedFull"] == 0
    runs = repository().recent_runs(RunKind.CAPACITY)
    assert runs[0].id == answer["run_id"]


def test_past_95_percent_an_overflow_bucket_opens_and_the_alarm_metric_moves(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    app.lambda_handler(load_event("capacity/scheduled.json"), FakeLambdaContext())
    repository().set_bucket_counters("temp", TEMP, used_bytes=960, object_count=9)
    capsys.readouterr()

    answer = app.lambda_handler(load_event("capacity/scheduled.json"), FakeLambdaContext())

    assert answer["opened"] == [f"{TEMP}-1"]
    assert S3Backend(region=REGION).describe_bucket(f"{TEMP}-1").tls_only
    assert repository().get_bucket("temp", TEMP).status is BucketStatus.FULL
    metrics = {p.name: p.value for p in metric_points(capsys.readouterr().out)}
    assert (metrics["BucketsMarkedFull"], metrics["OverflowBucketsOpened"]) == (1, 1)
    assert metrics["OverflowCreationFailures"] == 0


def test_run_now_as_a_dry_run_changes_nothing(
    app: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    app.lambda_handler(load_event("capacity/scheduled.json"), FakeLambdaContext())
    repository().set_bucket_counters("temp", TEMP, used_bytes=990, object_count=9)

    answer = app.lambda_handler(load_event("capacity/run-now.json"), FakeLambdaContext())

    assert (answer["dry_run"], answer["marked_full"], answer["opened"]) == (True, [TEMP], [])
    assert answer["overflow_needed"] == ["temp"]
    assert repository().get_bucket("temp", TEMP).status is BucketStatus.ACTIVE
    assert not S3Backend(region=REGION).bucket_exists(f"{TEMP}-1")


@pytest.mark.parametrize(
    ("event", "message"),
    [({"action": "explode"}, "unknown action"), ({"dry_run": "yes"}, "true or false")],
)
def test_an_event_it_does_not_take_is_a_clear_error(
    app: ModuleType, event: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        app.lambda_handler(event, FakeLambdaContext())


def seed_old_images(count: int, size: int) -> list[str]:
    """``count`` images of ``size`` bytes in TEMP, uploaded 40 days ago (old enough for
    the age-based cleanup), oldest first."""
    long_ago = datetime.now(UTC) - timedelta(days=40)
    ids = []
    for index in range(count):
        image = ImageRecord(
            id=f"old-{index}",
            owner="alice",
            location=Location(
                tier=TierName.TEMP, backend=BackendName.S3, bucket=TEMP, key=f"images/old-{index}"
            ),
            stored_size=size,
            uploaded_at=long_ago + timedelta(minutes=index),
        )
        repository().add_image(image)
        ids.append(image.id)
    return ids


def test_the_age_based_cleanup_is_a_dry_run_unless_asked(app: ModuleType) -> None:
    app.lambda_handler(load_event("capacity/scheduled.json"), FakeLambdaContext())
    ids = seed_old_images(3, 300)  # 900 of 1000 bytes: past the 85 % line

    dry = app.lambda_handler(load_event("capacity/cleanup-old-images.json"), FakeLambdaContext())

    (report,) = dry["cleanups"]
    assert (dry["dry_run"], report["bucket"], report["deleted"]) == (True, TEMP, ids[:1])
    assert repository().get_bucket("temp", TEMP).used_bytes == 900

    real = app.lambda_handler(
        {**load_event("capacity/cleanup-old-images.json"), "dry_run": False, "bucket": TEMP},
        FakeLambdaContext(),
    )

    assert real["cleanups"][0]["deleted"] == ids[:1]
    assert repository().get_image(ids[0]).state is ImageState.DELETED
    assert repository().get_bucket("temp", TEMP).used_bytes == 600


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "cleanup", "tier": "lukewarm"}, "tier must be one of"),
        ({"action": "cleanup", "tier": "temp", "threshold_percent": 0}, "threshold_percent"),
        ({"action": "cleanup", "tier": "temp", "bucket": 7}, "bucket must be"),
    ],
)
def test_a_cleanup_request_it_cannot_take_is_a_clear_error(
    app: ModuleType, event: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        app.lambda_handler(event, FakeLambdaContext())
