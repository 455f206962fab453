"""Reading uploads out of S3 and SQS events."""

from __future__ import annotations

import json

import pytest

from shelflife.domain.errors import InvalidArgument
from shelflife.domain.uploads import Upload, uploads_from_s3_event, uploads_from_sqs_body
from tests.support.events import load_event, s3_put_event

BUCKET = "shelflife-upload-123456789012-eu-west-1"


def test_keys_are_decoded_as_sam_and_s3_encode_them() -> None:
    # sam local generate-event writes %20 for a space; S3 itself writes +.
    sam = load_event("ingest/s3-put.json")
    s3 = s3_put_event(BUCKET, "incoming/alice/a b+c (2).jpg", size=10, etag="e")
    assert s3["Records"][0]["s3"]["object"]["key"] == "incoming/alice/a+b%2Bc+%282%29.jpg"

    assert [u.key for u in uploads_from_s3_event(sam)] == ["incoming/alice/summer holiday (2).jpg"]
    assert list(uploads_from_s3_event(s3)) == [
        Upload(bucket=BUCKET, key="incoming/alice/a b+c (2).jpg", size=10, etag="e")
    ]


def test_only_created_objects_are_uploads() -> None:
    event = s3_put_event(BUCKET, "incoming/alice/a.jpg")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"

    assert list(uploads_from_s3_event(event)) == []


def test_sqs_bodies_carry_s3_events() -> None:
    body = load_event("ingest/sqs-s3-put.json")["Records"][0]["body"]
    test_event = load_event("ingest/sqs-s3-test-event.json")["Records"][0]["body"]

    assert [u.key for u in uploads_from_sqs_body(body)] == ["incoming/alice/summer holiday (2).jpg"]
    assert list(uploads_from_sqs_body(test_event)) == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", json.dumps({"Records": "no"})])
def test_a_message_that_is_not_an_s3_event_is_an_error(body: str) -> None:
    with pytest.raises(InvalidArgument, match="not"):
        list(uploads_from_sqs_body(body))
