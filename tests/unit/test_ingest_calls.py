"""The AWS calls one upload makes through the ingest function (issue 24 counts them;
its target is at most 5), by operation, counted at botocore whoever makes them
(pynamodb included): each is accounted for here, so a change that adds one fails and
a change that saves one says so. ``bench/ingest.py`` prints the same with the time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from bench.aws import observed_calls
from tests.support.api import OTHER_PHOTO, PHOTO, UPLOADS, Api, api_stack
from tests.support.corpus import corpus_file
from tests.support.events import s3_put_event
from tests.support.lambda_context import FakeLambdaContext

# Steady state (the buckets recorded by an earlier upload), a new photo:
EXPECTED = Counter(
    {
        "GetObject": 1,  # the upload
        "GetItem": 1,  # an image of the same owner and bytes (a duplicate, a redelivery)
        "Query": 1,  # the bucket records, to place it (no cache: see the notes)
        "PutItem": 3,  # the pending claim, the capture facts, the upload's outcome
        "PutObject": 1,  # the stored image
        "TransactWriteItems": 1,  # activation: the record, its bucket's counters, the day's
        "DeleteObject": 1,  # the upload
    }
)


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def ingested(api: Api, name: str) -> Counter[str]:
    ticket = api.call(
        "POST", "/uploads", body={"filename": "a.jpg", "content_type": "image/jpeg"}
    ).json
    api.s3.put(UPLOADS, ticket["key"], corpus_file(name), content_type="image/jpeg")
    calls: Counter[str] = Counter()
    with observed_calls(lambda operation, _: calls.update([operation])):
        api.functions["ingest"].lambda_handler(
            s3_put_event(UPLOADS, ticket["key"]), FakeLambdaContext()
        )
    return calls


def test_an_upload_makes_the_calls_accounted_for(api: Api) -> None:
    ingested(api, PHOTO)  # records the buckets
    calls = ingested(api, OTHER_PHOTO)
    assert calls == EXPECTED
    assert calls.total() == 9  # issue 24's target is 5: not met yet
    # A duplicate stops after the lookup: its audit entry (looked for first, then put),
    # the mark on the photo, its outcome, the day's count, the delete.
    duplicate = ingested(api, OTHER_PHOTO)
    assert duplicate == Counter(
        {"GetObject": 1, "GetItem": 1, "Query": 1, "PutItem": 3, "UpdateItem": 1, "DeleteObject": 1}
    )
    # Another duplicate of the same photo: it is marked already, one write fewer.
    again = ingested(api, OTHER_PHOTO)
    assert again == duplicate - Counter({"PutItem": 1})
