"""GET /uploads/{id} (issue 23, part 4): what became of an upload, read back by the id
POST /uploads answered: pending, stored as a photo, a duplicate of which photo,
rejected and why, or expired; another user's upload is as unknown as none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from shelflife.domain import clock
from shelflife.domain.uploads import new_upload_id
from tests.support.api import PHOTO, UPLOADS, Api, api_stack
from tests.support.corpus import corpus_file
from tests.support.events import s3_put_event
from tests.support.lambda_context import FakeLambdaContext


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def send(api: Api, name: str, data: bytes, *, user: str = "alice") -> str:
    """A ticket, the file posted as its form says, ingest's event: the upload id."""
    ticket = api.call(
        "POST", "/uploads", user=user, body={"filename": name, "content_type": "image/jpeg"}
    ).json
    api.s3.put(UPLOADS, ticket["key"], data, content_type="image/jpeg")
    api.functions["ingest"].lambda_handler(
        s3_put_event(UPLOADS, ticket["key"]), FakeLambdaContext()
    )
    upload_id: str = ticket["upload_id"]
    return upload_id


def status(api: Api, upload_id: str, user: str = "alice") -> dict[str, Any]:
    answer = api.call("GET", f"/uploads/{upload_id}", user=user)
    assert answer.status == 200, answer.text
    found: dict[str, Any] = answer.json
    return found


def test_each_upload_says_what_became_of_it(api: Api) -> None:
    first = status(api, send(api, "beach day.jpg", corpus_file(PHOTO)))
    assert (first["state"], first["filename"]) == ("stored", "beach day.jpg")
    photo = api.call("GET", f"/photos/{first['photo_id']}").json
    assert photo["filename"] == "beach day.jpg", "the record keeps the name it came with"

    again = status(api, send(api, "copy.jpg", corpus_file(PHOTO)))
    assert (again["state"], again["photo_id"]) == ("duplicate", first["photo_id"])

    broken = status(api, send(api, "broken.jpg", corpus_file("broken/truncated.jpg")))
    assert broken["state"] == "rejected"
    assert broken["reason"]
    assert broken["photo_id"]


def test_an_upload_not_yet_arrived_is_pending_then_expired(api: Api) -> None:
    ticket = api.call(
        "POST", "/uploads", body={"filename": "later.jpg", "content_type": "image/jpeg"}
    ).json
    assert status(api, ticket["upload_id"])["state"] == "pending"
    long_ago = new_upload_id(clock.now() - timedelta(days=2))
    expired = status(api, long_ago)
    assert expired["state"] == "expired"
    assert "expired" in expired["reason"]


def test_another_users_upload_is_unknown_and_a_wrong_id_refused(api: Api) -> None:
    upload_id = send(api, "mine.jpg", corpus_file(PHOTO))
    assert api.call("GET", f"/uploads/{upload_id}", user="mallory").status == 404
    assert api.call("GET", "/uploads/not-an-id").status == 400
