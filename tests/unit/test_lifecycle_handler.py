"""functions/lifecycle/app.py under moto (the table from template.yaml, S3, SQS), driven
by the events in events/lifecycle/."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from shelflife.adapters.backends import S3Backend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.errors import InvalidArgument
from shelflife.domain.policy import scheduled
from shelflife.domain.records import ImageRecord, Location, RunKind, RunStatus
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from tests.conftest import REGION
from tests.support.emf import emitted_metrics
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.serving import serve_on_r2
from tests.support.template import create_table_from_template
from tests.unit.test_ingest_handler import ENVIRONMENT, TABLE, TEMP

HOT = ENVIRONMENT["SHELFLIFE_HOT_BUCKET"]


@dataclass
class ShortOfTime(FakeLambdaContext):
    """A context whose clock runs out after ``calls`` looks at it. Powertools'
    idempotency looks once (for how long its in-progress record holds), the sweep once
    before each page."""

    calls: int = 2

    def get_remaining_time_in_millis(self) -> int:
        self.calls -= 1
        return 300_000 if self.calls >= 0 else 1_000


@dataclass
class Stack:
    app: ModuleType
    s3: S3Backend
    repository: DynamoRepository
    queue_url: str

    def invoke(self, event: dict[str, Any], context: FakeLambdaContext | None = None) -> Any:
        return self.app.lambda_handler(event, context or FakeLambdaContext())

    def image(self, number: int, *, age: timedelta = timedelta(days=3)) -> ImageRecord:
        """A live image in TEMP, due for promotion."""
        data = f"photo {number}".encode() * 100
        key = f"images/img-{number:03d}/{sha256_hex(data)}.jpg"
        self.s3.put(TEMP, key, data, content_type="image/jpeg")
        settings = self.app.settings
        self.app.service.placement.buckets(TierName.TEMP)
        uploaded = datetime.now(UTC) - age
        record = ImageRecord(
            id=f"img-{number:03d}",
            owner="alice",
            location=Location(tier=TierName.TEMP, backend=BackendName.S3, bucket=TEMP, key=key),
            stored_size=len(data),
            stored_sha256=sha256_hex(data),
            uploaded_at=uploaded,
            placed_at=uploaded,
        )
        return self.repository.add_image(scheduled(record, settings))

    def tier(self, image: ImageRecord) -> TierName | None:
        current = self.repository.get_image(image.id)
        return current.tier if current.live else None

    def queued(self) -> list[dict[str, Any]]:
        """Take the continuation messages off the queue, as an SQS event."""
        sqs = boto3.client("sqs", region_name=REGION)
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        events = []
        for message in messages:
            event = load_event("lifecycle/continue.json")
            event["Records"][0].update({"messageId": message["MessageId"], "body": message["Body"]})
            events.append(event)
        return events


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="continue")[
        "QueueUrl"
    ]
    for name, value in {
        **ENVIRONMENT,
        "SHELFLIFE_LIFECYCLE_CONTINUATION_QUEUE_URL": queue_url,
        "SHELFLIFE_LIFECYCLE_PAGE_SIZE": "2",
        # Promotions copy (TEMP and HOT are one offer here: in place, a promotion is
        # no write at all, and these tests need work that is due).
        "SHELFLIFE_PROMOTE_IN_PLACE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    create_table_from_template(TABLE)
    s3 = S3Backend(region=REGION)
    for name, tier in ((TEMP, "temp"), (HOT, "hot")):
        s3.create_bucket(name, BucketPolicy(tier=tier))
    sys.modules.pop("functions.lifecycle.app", None)
    app = importlib.import_module("functions.lifecycle.app")
    yield Stack(app, s3, DynamoRepository(TABLE, region=REGION), queue_url)
    sys.modules.pop("functions.lifecycle.app", None)


def test_the_daily_run_moves_what_is_due_and_publishes_its_counts(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    due = [stack.image(n) for n in range(3)]
    young = stack.image(9, age=timedelta(hours=1))

    answer = stack.invoke(load_event("lifecycle/scheduled.json"))

    assert answer["complete"] is True
    assert (answer["counts"]["examined"], answer["counts"]["promoted"]) == (3, 3)
    assert [stack.tier(image) for image in due] == [TierName.HOT] * 3
    assert stack.tier(young) is TierName.TEMP
    [run] = stack.repository.recent_runs(RunKind.LIFECYCLE)
    assert (run.status, run.counts["promoted"]) == (RunStatus.COMPLETED, 3)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["ImagesPromoted"], metrics["LifecycleFailures"]) == (3, 0)


def test_the_same_scheduled_event_delivered_twice_runs_once(stack: Stack) -> None:
    stack.image(1)
    event = load_event("lifecycle/scheduled.json")

    first = stack.invoke(event)
    stack.image(2)  # due now, but the second delivery is the same run
    second = stack.invoke(event)

    assert second == first
    assert len(stack.repository.recent_runs(RunKind.LIFECYCLE)) == 1
    assert stack.repository.get_image("img-002").location.tier is TierName.TEMP  # type: ignore[union-attr]


def test_a_run_short_of_time_continues_through_its_queue(stack: Stack) -> None:
    images = [stack.image(n) for n in range(7)]

    first = stack.invoke(load_event("lifecycle/scheduled.json"), ShortOfTime())

    assert first["complete"] is False
    assert first["counts"]["promoted"] == 2  # one page of two, then out of time
    [continuation] = stack.queued()
    body = json.loads(continuation["Records"][0]["body"])
    assert (body["action"], body["run_id"]) == ("continue", first["run_id"])

    answer = stack.invoke(continuation)

    assert answer == {"batchItemFailures": []}
    assert [stack.tier(image) for image in images] == [TierName.HOT] * 7
    [run] = stack.repository.recent_runs(RunKind.LIFECYCLE)
    assert (run.status, run.counts["promoted"], run.cursor) == (RunStatus.COMPLETED, 7, None)
    assert stack.queued() == []
    # The same message again (SQS delivers at least once): nothing more happens.
    assert stack.invoke(continuation) == {"batchItemFailures": []}
    [run] = stack.repository.recent_runs(RunKind.LIFECYCLE)
    assert run.counts["promoted"] == 7


def test_a_dry_run_now_reports_and_changes_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    image = stack.image(1)

    answer = stack.invoke(load_event("lifecycle/run-now.json"))

    assert answer["dry_run"] is True
    assert answer["actions"] == [
        {"image_id": image.id, "action": "promote", "outcome": "promoted", "detail": "hot"}
    ]
    assert stack.tier(image) is TierName.TEMP
    assert "ImagesPromoted" not in emitted_metrics(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "purge"}, "unknown action 'purge'"),
        ({"action": "run", "dry_run": "yes"}, "dry_run must be true or false"),
        ({"action": "run", "max_seconds": 0}, "max_seconds must be a whole number"),
        ({"action": "continue", "run_id": "r"}, "a continuation needs started_at, cursor"),
        (
            {"action": "continue", "run_id": "r", "started_at": "noon", "cursor": "c"},
            "started_at is not an ISO time",
        ),
    ],
)
def test_an_event_it_does_not_take_is_a_clear_error(
    stack: Stack, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        stack.invoke(event)


def test_a_continuation_of_an_unknown_run_fails_and_is_redelivered(stack: Stack) -> None:
    event = load_event("lifecycle/continue.json")

    # Its batch is that one message: the invocation fails, SQS hands the message out
    # again, and after three receipts to the dead-letter queue.
    with pytest.raises(BatchProcessingError, match="All records failed"):
        stack.invoke(event)

    assert stack.repository.recent_runs(RunKind.LIFECYCLE) == []


def test_a_reschedule_stores_the_schedule_of_the_current_settings(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Scheduled with TEMP's 48 hours; the function then deployed with 24.
    image = stack.image(1, age=timedelta(hours=30))
    assert stack.repository.get_image(image.id).due_at == image.uploaded_at + timedelta(hours=48)
    monkeypatch.setenv("SHELFLIFE_TEMP_HOURS", "24")
    sys.modules.pop("functions.lifecycle.app", None)
    stack.app = importlib.import_module("functions.lifecycle.app")

    answer = stack.invoke(load_event("lifecycle/reschedule.json"))

    assert (answer["reschedule"], answer["complete"]) == (True, True)
    assert answer["counts"]["rescheduled"] == 1
    current = stack.repository.get_image(image.id)
    assert current.due_at == image.uploaded_at + timedelta(hours=24)
    assert stack.tier(image) is TierName.TEMP  # nothing moved: the next sweep does that
    assert "LifecycleExamined" not in emitted_metrics(capsys.readouterr().out)
    assert stack.invoke(load_event("lifecycle/scheduled.json"))["counts"]["promoted"] == 1


def test_the_apis_serve_request_moves_a_published_photo_to_r2(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shelflife.domain.policy import published

    r2 = serve_on_r2(monkeypatch)
    sys.modules.pop("functions.lifecycle.app", None)
    stack.app = importlib.import_module("functions.lifecycle.app")
    image = stack.image(0, age=timedelta(hours=5))
    current = stack.repository.get_image(image.id)
    stack.repository.replace_image(
        current, published(current, datetime.now(UTC), stack.app.service.configured)
    )

    answer = stack.invoke(load_event("lifecycle/serve.json"))

    assert answer["counts"] == {"served": 1}
    served = stack.repository.get_image(image.id)
    assert served.location is not None
    assert (served.location.backend, served.location.bucket) == (BackendName.R2, "shelflife-serve")
    assert r2.head("shelflife-serve", served.location.key).sha256 == image.stored_sha256
    # Delivered again (Lambda retries an asynchronous invocation): nothing more to do.
    assert stack.invoke(load_event("lifecycle/serve.json"))["counts"] == {"rescheduled": 1}


@pytest.mark.parametrize("ids", [None, [], ["x"] * 101, [7], "img-000"])
def test_a_serve_request_without_a_list_of_ids_is_a_clear_error(stack: Stack, ids: Any) -> None:
    with pytest.raises(InvalidArgument, match="image_ids"):
        stack.invoke({"action": "serve", "image_ids": ids})
