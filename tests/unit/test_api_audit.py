"""The audit trail through the api (issue 22, part 1): a photo's history for its owner,
GET /audit for admins; entries written by the audit function from the table's stream
(the template's mapping, played over moto's stream)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import OTHER_PHOTO, Api, api_stack


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def history(api: Api, photo: str, user: str = "alice", **query: str) -> list[dict[str, Any]]:
    api.audit.poll()
    answer = api.call("GET", f"/photos/{photo}/history", user=user, query=query or None)
    assert answer.status == 200, answer.text
    items: list[dict[str, Any]] = answer.json["items"]
    return items


def test_a_photos_life_is_in_its_history_with_who_and_where(api: Api) -> None:
    photo = api.upload(draft_id="trip")
    assert api.call("POST", "/drafts/trip/publish", body={"photo_ids": [photo]}).status == 200
    assert api.call("DELETE", f"/photos/{photo}").status == 200

    entries = history(api, photo)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("stored", "ingest"),
        ("published", "user:alice"),
        ("deleted", "user:alice"),
    ]
    stored, published, deleted = entries
    assert stored["before"] is None
    assert stored["after"]["tier"] == "temp"
    assert published["before"] == published["after"]
    assert deleted["before"] == stored["after"]
    assert deleted["after"] is None
    assert deleted["reason"] == "by its owner"
    # Delivered again, the stream's records write the same entries.
    api.audit._positions.clear()
    assert api.audit.poll() >= 3
    assert history(api, photo) == entries


def test_a_duplicate_upload_is_entered_once(api: Api) -> None:
    photo = api.upload()
    api.known.discard(photo)
    again = api.upload()  # the same bytes: no new image
    assert again == photo
    actions = [e["action"] for e in history(api, photo)]
    assert actions == ["stored", "deduplicated"]


def test_history_is_the_owners_and_paginates(api: Api) -> None:
    photo = api.upload(draft_id="trip")
    api.call("POST", "/drafts/trip/publish", body={"photo_ids": [photo]})
    api.audit.poll()
    assert api.call("GET", f"/photos/{photo}/history", user="mallory").status == 404
    assert api.call("GET", "/photos/nothing-here/history").status == 404
    assert len(history(api, photo)) == 2
    # Every photo route is its owner's: an admin reads anyone's through GET /audit.
    assert api.call("GET", f"/photos/{photo}/history", user="root", admin=True).status == 404
    admin = api.call("GET", "/audit", user="root", admin=True, query={"photo_id": photo})
    assert admin.status == 200
    assert len(admin.json["items"]) == 2

    first = api.call("GET", f"/photos/{photo}/history", query={"limit": "1"})
    assert first.status == 200
    assert len(first.json["items"]) == 1
    rest = api.call(
        "GET", f"/photos/{photo}/history", query={"limit": "1", "cursor": first.json["cursor"]}
    )
    assert [e["action"] for e in first.json["items"] + rest.json["items"]] == [
        "stored",
        "published",
    ]
    other = api.upload(name=OTHER_PHOTO)
    api.audit.poll()
    refused = api.call("GET", f"/photos/{other}/history", query={"cursor": first.json["cursor"]})
    assert refused.status == 400, refused.text
    garbage = api.call("GET", f"/photos/{photo}/history", query={"cursor": "not-a-cursor"})
    assert garbage.status == 400, garbage.text


def test_admins_search_the_trail_by_actor_and_action(api: Api) -> None:
    mine = api.upload(user="alice")
    theirs = api.upload(user="bob", name=OTHER_PHOTO)
    api.call("DELETE", f"/photos/{mine}", user="alice")
    api.audit.poll()

    assert api.call("GET", "/audit", user="alice").status == 403
    everything = api.call("GET", "/audit", user="root", admin=True)
    assert everything.status == 200, everything.text
    assert {(e["image_id"], e["action"]) for e in everything.json["items"]} == {
        (mine, "stored"),
        (theirs, "stored"),
        (mine, "deleted"),
    }
    by_alice = api.call("GET", "/audit", user="root", admin=True, query={"actor": "user:alice"})
    assert [(e["image_id"], e["action"]) for e in by_alice.json["items"]] == [(mine, "deleted")]
    stored = api.call("GET", "/audit", user="root", admin=True, query={"action": "stored"})
    assert {e["image_id"] for e in stored.json["items"]} == {mine, theirs}

    pages: list[str] = []
    cursor = None
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        answer = api.call("GET", "/audit", user="root", admin=True, query=query)
        assert answer.status == 200, answer.text
        pages += [f"{e['image_id']} {e['action']}" for e in answer.json["items"]]
        cursor = answer.json["cursor"]
        if cursor is None:
            break
    assert sorted(pages) == sorted(
        f"{e['image_id']} {e['action']}" for e in everything.json["items"]
    )

    future = api.call(
        "GET",
        "/audit",
        user="root",
        admin=True,
        query={"since": "2099-01-01", "until": "2099-01-02"},
    )
    assert future.status == 200
    assert future.json["items"] == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"since": "yesterday"}, 422),
        ({"action": "exploded"}, 422),
        ({"since": "2026-02-30"}, 400),
        ({"since": "2026-12-05", "until": "2026-12-01"}, 400),
        ({"since": "2020-01-01", "until": "2026-01-01"}, 400),
        ({"cursor": "bm90IGpzb24"}, 400),
        ({"limit": "0"}, 422),
    ],
)
def test_a_wrong_search_is_a_clear_4xx(api: Api, query: dict[str, str], status: int) -> None:
    answer = api.call("GET", "/audit", user="root", admin=True, query=query)
    assert answer.status == status, answer.text
    assert "error" in answer.json
