"""functions/cleanup/app.py under moto: the table from template.yaml with its stream,
played through the template's event source mapping (filter, batches, retries,
on-failure destination) onto objects on S3 and R2 (moto) and B2 (b2sdk's simulator);
and the events in events/cleanup/."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest

from shelflife.adapters.backends import ProviderBackends, StorageBackend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.errors import Conflict, InvalidArgument
from shelflife.domain.policy import soft_deleted
from shelflife.domain.records import (
    BucketRecord,
    CleanupStatus,
    ImageRecord,
    ImageState,
    Location,
)
from shelflife.domain.settings import BackendName, TierName
from shelflife.domain.storage import BucketPolicy, sha256_hex
from shelflife.services.cleanup import DEAD_LETTER_SOURCE
from shelflife.services.reconcile import TIME_MARGIN_MS
from shelflife_tools.local.streams import StreamMapping
from tests.conftest import R2_ACCOUNT_ID, REGION
from tests.support.crashes import FlakyStore
from tests.support.emf import emitted_metrics
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.lifecycle import real_stores
from tests.support.template import create_table_from_template
from tests.unit.test_ingest_handler import ENVIRONMENT, TABLE, TEMP

HOT = ENVIRONMENT["SHELFLIFE_HOT_BUCKET"]
COLD = ENVIRONMENT["SHELFLIFE_COLD_BUCKET"]
BUCKETS = {TierName.TEMP: TEMP, TierName.HOT: HOT, TierName.COLD: COLD}
BACKENDS = {
    TierName.TEMP: BackendName.S3,
    TierName.HOT: BackendName.R2,
    TierName.COLD: BackendName.B2,
}
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Stack:
    app: ModuleType
    stores: dict[BackendName, StorageBackend]
    repository: DynamoRepository
    mapping: StreamMapping
    dead_letter_url: str
    images: int = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.app.lambda_handler(event, FakeLambdaContext())

    def use(self, **stores: Any) -> None:
        """The handler's backends: the stack's, some replaced (a flaky one)."""
        given = {name.value: store for name, store in self.stores.items()}
        backends = ProviderBackends(self.app.settings, given={**given, **stores})
        self.app.service.backends = backends
        self.app.reconciler.backends = backends

    def place(self, tier: TierName, data: bytes, image_id: str) -> Location:
        key = f"images/{image_id}/{sha256_hex(data)}.jpg"
        self.stores[BACKENDS[tier]].put(BUCKETS[tier], key, data, content_type="image/jpeg")
        return Location(tier=tier, backend=BACKENDS[tier], bucket=BUCKETS[tier], key=key)

    def image(self, tier: TierName) -> ImageRecord:
        self.images += 1
        image_id = f"img-{self.images:03d}"
        data = f"photo {self.images}".encode() * 50
        return self.repository.add_image(
            ImageRecord(
                id=image_id,
                owner="alice",
                location=self.place(tier, data, image_id),
                stored_size=len(data),
                stored_sha256=sha256_hex(data),
                original_sha256=sha256_hex(image_id.encode()),
                uploaded_at=NOW,
            )
        )

    def move(self, image: ImageRecord, tier: TierName) -> ImageRecord:
        """What the lifecycle does: claim, copy, flip (the source is cleanup's)."""
        assert image.location is not None
        data = self.stores[image.location.backend].get(image.location.bucket, image.location.key)
        target = self.place(tier, data.data, image.id)
        claimed = self.repository.replace_image(image, image.model_copy(update={"move_to": target}))
        return self.repository.replace_image(
            claimed, claimed.model_copy(update={"location": target, "move_to": None})
        )

    def soft_delete(self, image: ImageRecord) -> ImageRecord:
        settings = self.app.settings
        return self.repository.replace_image(image, soft_deleted(image, NOW, settings))

    def objects(self) -> set[tuple[str, str, str]]:
        return {
            (name.value, BUCKETS[tier], info.key)
            for tier, name in BACKENDS.items()
            for info in self.stores[name].iter_objects(BUCKETS[tier])
        }

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        messages = sqs.receive_message(
            QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


def where(location: Location | None) -> tuple[str, str, str]:
    assert location is not None
    return (location.backend.value, location.bucket, location.key)


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    sqs = boto3.client("sqs", region_name=REGION)
    dead_letter_url = sqs.create_queue(QueueName="cleanup-dlq")["QueueUrl"]
    for name, value in {
        **ENVIRONMENT,
        "SHELFLIFE_HOT_BACKEND": "r2",
        "SHELFLIFE_R2_ACCOUNT_ID": R2_ACCOUNT_ID,
        "SHELFLIFE_CLEANUP_DEAD_LETTER_QUEUE_URL": dead_letter_url,
    }.items():
        monkeypatch.setenv(name, value)
    create_table_from_template(TABLE)
    stores = real_stores()
    repository = DynamoRepository(TABLE, region=REGION)
    for tier, backend in BACKENDS.items():
        stores[backend].create_bucket(BUCKETS[tier], BucketPolicy(tier=tier.value))
        repository.add_bucket(
            BucketRecord(
                tier=tier, backend=backend, name=BUCKETS[tier], capacity_bytes=10**9, created_at=NOW
            )
        )
    sys.modules.pop("functions.cleanup.app", None)
    app = importlib.import_module("functions.cleanup.app")
    mapping = StreamMapping.from_template(
        TABLE, app.lambda_handler, on_failure_queue_url=dead_letter_url, region=REGION
    )
    stack = Stack(app, stores, repository, mapping, dead_letter_url)
    stack.use()
    yield stack
    sys.modules.pop("functions.cleanup.app", None)


def test_deletes_soft_deletes_and_moves_delete_exactly_what_they_let_go_of(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = {tier: stack.image(tier) for tier in TierName}
    removed = stack.image(TierName.HOT)
    soft = {tier: stack.image(tier) for tier in TierName}
    promoted, archived = stack.image(TierName.TEMP), stack.image(TierName.HOT)
    accessed = stack.image(TierName.COLD)
    stack.mapping.poll()  # the uploads: nothing to deliver
    assert stack.mapping.invocations == 0

    stack.repository.remove_image(removed)
    for image in soft.values():
        stack.soft_delete(image)
    promoted = stack.move(promoted, TierName.HOT)
    archived = stack.move(archived, TierName.COLD)
    stack.repository.replace_image(accessed, accessed.model_copy(update={"access_count": 1}))
    delivered = stack.mapping.poll()

    # The filter lets through the removal, three soft deletes and two flips: not the
    # moves' claims, the access, or the bucket counters those writes moved.
    assert delivered == 6
    survivors = [*kept.values(), accessed, promoted, archived]
    assert stack.objects() == {where(image.location) for image in survivors}
    assert emitted_metrics(capsys.readouterr().out)["CleanupCompleted"] == 6
    assert stack.dead_letters() == []

    # A second delivery of everything (a replay from the stream's start) changes nothing.
    stack.mapping.rewind()
    stack.mapping.poll()
    assert stack.objects() == {where(image.location) for image in survivors}


def test_a_backend_that_fails_twice_then_works_ends_completed(stack: Stack) -> None:
    image = stack.image(TierName.HOT)
    flaky = FlakyStore(stack.stores[BackendName.R2], failures=2)
    stack.use(r2=flaky)
    stack.mapping.poll()
    stack.soft_delete(image)

    stack.mapping.poll()

    assert flaky.attempts == 3
    assert where(image.location) not in stack.objects()
    (task,) = stack.repository.cleanup_tasks()
    assert (task.image_id, task.status, task.attempts) == (image.id, CleanupStatus.COMPLETED, 2)
    assert stack.dead_letters() == []


def test_a_backend_that_always_fails_lands_in_the_dead_letter_queue_until_redriven(
    stack: Stack,
) -> None:
    image = stack.image(TierName.COLD)
    stack.use(b2=FlakyStore(stack.stores[BackendName.B2], failures=None))
    stack.mapping.poll()
    stack.soft_delete(image)

    stack.mapping.poll()

    (letter,) = stack.dead_letters()
    assert letter["source"] == DEAD_LETTER_SOURCE
    assert (letter["image_id"], letter["attempts"]) == (image.id, 3)
    assert letter["error"].startswith("Throttled: b2: delete: slow down")
    assert where(image.location) in stack.objects()
    status = stack.invoke(load_event("cleanup/status.json"))
    assert (status["status"], status["dead_letters"]) == ("alarm", 1)
    assert status["recent_failures"][0]["status"] == "failed"

    stack.use()  # B2 answers again
    report = stack.invoke(load_event("cleanup/redrive.json"))

    assert (report["completed"], report["failed"], report["objects_deleted"]) == (1, 0, 1)
    assert where(image.location) not in stack.objects()
    assert stack.dead_letters() == []
    assert stack.invoke(load_event("cleanup/status.json"))["status"] == "ok"


def test_a_batch_lambda_gave_up_on_is_read_back_from_the_stream_by_the_redrive(
    stack: Stack,
) -> None:
    image = stack.image(TierName.TEMP)
    stack.mapping.poll()
    stack.soft_delete(image)

    def timing_out(event: dict[str, Any], context: Any) -> Any:
        raise TimeoutError("Task timed out after 60.00 seconds")

    stack.mapping.handler = timing_out
    stack.mapping.poll()

    (letter,) = stack.dead_letters()
    assert letter["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert where(image.location) in stack.objects()

    report = stack.invoke(load_event("cleanup/redrive.json"))

    assert (report["completed"], report["objects_deleted"]) == (1, 1)
    assert where(image.location) not in stack.objects()


def test_the_sample_events_are_handled(stack: Stack) -> None:
    s3 = stack.stores[BackendName.S3]
    for name in ("stream-soft-delete.json", "stream-remove.json"):
        event = load_event(f"cleanup/{name}")
        (record,) = event["Records"]
        item = record["dynamodb"].get("NewImage") or record["dynamodb"]["OldImage"]
        bucket, key = item["bucket"]["S"], item["key"]["S"]
        if not s3.bucket_exists(bucket):
            s3.create_bucket(bucket, BucketPolicy(tier="hot"))
        s3.put(bucket, key, b"photo", content_type="image/jpeg")
        assert stack.mapping.matches(record), name  # the template's filter lets it in

        assert stack.invoke(event) == {"batchItemFailures": []}
        assert not s3.exists(bucket, key), name
    with pytest.raises(InvalidArgument, match="unknown event"):
        stack.invoke({"action": "sweep"})
    with pytest.raises(InvalidArgument, match="max_messages"):
        stack.invoke({"action": "redrive", "max_messages": "all"})


def test_a_reconciliation_reports_then_fixes_and_a_run_can_be_continued(stack: Stack) -> None:
    image = stack.image(TierName.TEMP)
    assert image.location is not None
    stack.stores[BackendName.S3].delete(image.location.bucket, image.location.key)

    report = stack.invoke(load_event("cleanup/reconcile.json"))

    assert (report["dry_run"], report["complete"], report["counts"]["missing"]) == (True, True, 1)
    assert stack.repository.get_image(image.id).state is ImageState.ACTIVE

    fixed = stack.invoke({"action": "reconcile", "fix": True})

    assert fixed["counts"]["missing"] == 1
    assert stack.repository.get_image(image.id).state is ImageState.LOST
    with pytest.raises(Conflict, match="nothing to resume"):
        stack.invoke({"action": "reconcile", "run_id": fixed["run_id"]})


def test_a_reconciliation_out_of_time_stops_and_its_run_id_continues_it(stack: Stack) -> None:
    stack.image(TierName.TEMP)
    stack.image(TierName.COLD)
    short = FakeLambdaContext(remaining_ms=TIME_MARGIN_MS - 1)

    stopped = stack.app.lambda_handler(load_event("cleanup/reconcile.json"), short)

    assert stopped["complete"] is False
    done = stack.invoke({"action": "reconcile", "run_id": stopped["run_id"]})
    assert (done["run_id"], done["complete"], done["counts"]["records"]) == (
        stopped["run_id"],
        True,
        2,
    )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"action": "reconcile", "fix": "yes"}, "fix must be true or false"),
        ({"action": "reconcile", "run_id": 5}, "run_id must be"),
        ({"action": "reconcile", "max_seconds": 0}, "max_seconds must be"),
    ],
)
def test_a_reconcile_request_it_cannot_take_is_a_clear_error(
    stack: Stack, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        stack.invoke(event)
