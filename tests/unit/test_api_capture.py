"""Capture metadata through the api (issue 22, part 2): the labels a client sends with
POST /uploads, signed into the upload's form, and GET /photos/{id}'s capture facts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Api, api_stack


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def test_a_photo_shows_what_the_camera_recorded_and_its_labels(api: Api) -> None:
    photo = api.upload(name="camera/DSCN0010.jpg", labels={"trip": "lisbon", "roll": "7"})
    answer = api.call("GET", f"/photos/{photo}")
    assert answer.status == 200, answer.text
    capture = answer.json["capture"]
    assert capture["camera_make"] == "NIKON"
    assert capture["taken_at"] == "2008-10-22T16:28:39"
    assert capture["labels"] == {"trip": "lisbon", "roll": "7"}
    assert "gps" not in answer.text.lower()
    # Lists stay lean: the facts are read for one photo only.
    listed = api.call("GET", "/photos").json["items"]
    assert "capture" not in listed[0]


@pytest.mark.parametrize(
    ("labels", "status"),
    [
        ({"Trip": "x"}, 400),
        ({"trip": "é"}, 400),
        ({f"k{n}": "v" for n in range(11)}, 422),
        ({"trip": 7}, 422),
    ],
)
def test_labels_past_their_limits_are_a_clear_4xx(
    api: Api, labels: dict[str, Any], status: int
) -> None:
    body = {"filename": "a.jpg", "content_type": "image/jpeg", "labels": labels}
    answer = api.call("POST", "/uploads", body=body)
    assert answer.status == status, answer.text
    assert "error" in answer.json


def test_labels_are_signed_into_the_upload_form(api: Api) -> None:
    body = {"filename": "a.jpg", "content_type": "image/jpeg", "labels": {"trip": "rome"}}
    answer = api.call("POST", "/uploads", body=body)
    assert answer.status == 201, answer.text
    assert answer.json["fields"]["x-amz-meta-label-trip"] == "rome"
