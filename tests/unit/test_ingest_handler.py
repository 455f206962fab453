"""functions/ingest/app.py under moto, driven by the events in events/ingest/."""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from shelflife.adapters.backends import S3Backend
from shelflife.adapters.table.dynamo import DynamoRepository
from shelflife.domain.errors import ConfigurationError
from shelflife.domain.records import ImageRecord, ImageState
from shelflife.domain.storage import BucketPolicy
from tests.conftest import REGION
from tests.support.corpus import corpus_file
from tests.support.emf import emitted_metrics
from tests.support.events import load_event, s3_put_event, sqs_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.template import create_table_from_template

UPLOADS = "shelflife-upload-123456789012-eu-west-1"
TEMP = "shelflife-temp-123456789012-eu-west-1"
TABLE = "shelflife-test"
KEY = "incoming/alice/summer holiday (2).jpg"
ENVIRONMENT = {
    "SHELFLIFE_TABLE_NAME": TABLE,
    "SHELFLIFE_UPLOAD_BUCKET": UPLOADS,
    "SHELFLIFE_TEMP_BUCKET": TEMP,
    "SHELFLIFE_HOT_BUCKET": "shelflife-hot-123456789012-eu-west-1",
    "SHELFLIFE_COLD_BUCKET": "shelflife-cold-123456789012",
    "POWERTOOLS_SERVICE_NAME": "shelflife",
    "POWERTOOLS_METRICS_NAMESPACE": "shelflife",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@dataclass
class Stack:
    app: ModuleType
    s3: S3Backend
    repository: DynamoRepository
    logs: io.StringIO

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines()]

    def invoke(self, event: dict[str, Any]) -> Any:
        return self.app.lambda_handler(event, FakeLambdaContext())

    def upload(self, data: bytes, key: str = KEY) -> dict[str, Any]:
        info = self.s3.put(UPLOADS, key, data, content_type="image/jpeg")
        return s3_put_event(UPLOADS, key, size=info.size)

    def images(self, owner: str = "alice") -> list[ImageRecord]:
        return self.repository.images_by_owner(owner).items

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return [info.key for info in self.s3.iter_objects(bucket, prefix=prefix)]


def import_app() -> ModuleType:
    sys.modules.pop("functions.ingest.app", None)
    return importlib.import_module("functions.ingest.app")


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    create_table_from_template(TABLE)
    s3 = S3Backend(region=REGION)
    s3.create_bucket(UPLOADS, BucketPolicy(tier="upload"))
    s3.create_bucket(TEMP, BucketPolicy(tier="temp"))
    app = import_app()
    # The handler's structured log lines, as CloudWatch would get them (the logger's own
    # handler keeps the stdout of the first import in this process).
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(app.logger.registered_formatter)
    app.logger.addHandler(handler)
    yield Stack(app, s3, DynamoRepository(TABLE, region=REGION), logs)
    app.logger.removeHandler(handler)
    sys.modules.pop("functions.ingest.app", None)


def test_the_sample_event_names_an_encoded_key() -> None:
    key = load_event("ingest/s3-put.json")["Records"][0]["s3"]["object"]["key"]
    assert key == "incoming/alice/summer%20holiday%20%282%29.jpg"


def test_an_s3_event_stores_the_image(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    photo = corpus_file("photos/flowers.jpeg")

    answer = stack.invoke(stack.upload(photo))

    assert answer == {"results": [{"key": KEY, "outcome": "stored"}]}
    [image] = stack.images()
    assert image.state is ImageState.ACTIVE
    assert image.location is not None
    assert stack.keys(TEMP) == [image.location.key]
    assert stack.keys(UPLOADS) == []
    assert stack.repository.get_bucket("temp", TEMP).object_count == 1
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["ImagesIngested"] == 1
    assert metrics["BytesIn"] == len(photo)
    assert metrics["BytesOut"] == image.stored_size
    [log] = [record for record in stack.log_records() if record["message"] == "upload stored"]
    assert log["correlation_id"] == KEY
    assert log["image_id"] == image.id


def test_the_same_event_twice_gives_one_image(stack: Stack) -> None:
    event = stack.upload(corpus_file("photos/flowers.jpeg"))

    stack.invoke(event)
    again = stack.invoke(event)

    assert again == {"results": [{"key": KEY, "outcome": "gone"}]}
    assert len(stack.images()) == 1
    assert len(stack.keys(TEMP)) == 1
    assert stack.repository.get_bucket("temp", TEMP).object_count == 1


def test_sqs_batches_quarantine_bad_input_and_report_only_what_can_be_retried(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    good = stack.upload(corpus_file("photos/flowers.jpeg"), "incoming/alice/good.jpg")
    bad = stack.upload(corpus_file("formats/check.svg"), "incoming/alice/bad.jpg")
    event = sqs_event(json.dumps(good), json.dumps(bad), "this is not JSON")

    answer = stack.invoke(event)

    # The unreadable message goes back to the queue (and on to its DLQ); the rest succeed.
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-2"}]}
    images = {image.state: image for image in stack.images()}
    assert set(images) == {ImageState.ACTIVE, ImageState.REJECTED}
    rejected = images[ImageState.REJECTED]
    assert "SVG" in (rejected.rejection_reason or "")
    assert stack.keys(UPLOADS) == [rejected.quarantine_key]
    assert emitted_metrics(capsys.readouterr().out)["ImagesRejected"] == 1


def test_the_s3_test_event_is_ignored(stack: Stack) -> None:
    answer = stack.invoke(load_event("ingest/sqs-s3-test-event.json"))

    assert answer == {"batchItemFailures": []}
    assert stack.images() == []


def test_a_missing_variable_stops_the_cold_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHELFLIFE_TEMP_BUCKET")

    with pytest.raises(ConfigurationError, match="SHELFLIFE_TEMP_BUCKET"):
        import_app()
