"""GET /photos/export (issue 22, part 3): the caller's photos (an admin's: everyone's,
filtered) with a fresh URL each, as CSV or JSON, a page at a time through a cursor."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from shelflife.domain.records import ImageState
from tests.support.api import OTHER_PHOTO, Api, api_stack
from tests.support.events import load_event


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def every_page(api: Api, **query: str) -> list[dict[str, Any]]:
    """Every item of a JSON export, page after page, with the caller of ``query``."""
    user = query.pop("user", "alice")
    admin = query.pop("admin", "") == "yes"
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        asked = {**query, "format": "json", "limit": "1"}
        if cursor:
            asked["cursor"] = cursor
        answer = api.call("GET", "/photos/export", user=user, admin=admin, query=asked)
        assert answer.status == 200, answer.text
        items += answer.json["items"]
        cursor = answer.json["cursor"]
        assert answer.headers.get("X-Next-Cursor") == cursor
        if cursor is None:
            return items


def test_a_csv_export_of_the_callers_photos_with_a_url_each(api: Api) -> None:
    mine = [api.upload("alice"), api.upload("alice", name=OTHER_PHOTO)]
    api.upload("bob")

    answer = api.send(load_event("api/get-photos-export.json"))

    assert answer.status == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    exported = rows(answer.text)
    assert sorted(row["id"] for row in exported) == sorted(mine)
    for row in exported:
        assert row["owner"] == "alice"
        assert row["state"] == "active"
        assert row["tier"] == "temp"
        assert row["url"].startswith("http")
        assert row["url_expires_at"]
        assert int(row["stored_size"]) > 0
    # Signing a URL for an export is not a view: the records were not written.
    for photo in mine:
        assert api.repository.get_image(photo).access_count == 0


def test_pages_go_on_through_the_cursor_each_photo_once(api: Api) -> None:
    mine = {api.upload("alice"), api.upload("alice", name=OTHER_PHOTO)}
    items = every_page(api)
    assert sorted(item["id"] for item in items) == sorted(mine)


def test_an_admin_exports_everyones_or_one_owners_with_filters(api: Api) -> None:
    alice, bob = api.upload("alice"), api.upload("bob")
    gone = api.upload("carol", name=OTHER_PHOTO)
    assert api.call("DELETE", f"/photos/{gone}", user="carol").status == 200

    everyone = every_page(api, user="ops", admin="yes")
    assert {i["id"]: i["owner"] for i in everyone} == {alice: "alice", bob: "bob", gone: "carol"}
    assert [i["url"] for i in everyone if i["id"] == gone] == [None]  # no stored image
    assert [i["id"] for i in every_page(api, user="ops", admin="yes", owner="bob")] == [bob]
    live = every_page(api, user="ops", admin="yes", state=ImageState.ACTIVE.value)
    assert sorted(i["id"] for i in live) == sorted([alice, bob])
    assert every_page(api, user="ops", admin="yes", tier="cold") == []
    later = every_page(api, user="ops", admin="yes", since="2999-01-01T00:00:00")
    assert later == []


def test_a_user_exports_only_their_own(api: Api) -> None:
    api.upload("bob")
    answer = api.call("GET", "/photos/export", user="alice", query={"owner": "bob"})
    assert answer.status == 403
    assert every_page(api, user="alice", owner="alice") == []


@pytest.mark.parametrize(
    "query",
    [
        {"format": "xml"},
        {"limit": "0"},
        {"limit": "1001"},
        {"tier": "warm"},
        {"state": "sleeping"},
        {"since": "yesterday"},
        {"until": "0.5"},  # pydantic's datetime would take it as a Unix time
        {"since": "1700000000"},
    ],
)
def test_a_wrong_parameter_is_a_422(api: Api, query: dict[str, str]) -> None:
    answer = api.call("GET", "/photos/export", query=query)
    assert answer.status == 422, answer.text
    assert next(iter(query)) in answer.text


def test_times_are_iso_dates_or_times_and_real_ones(api: Api) -> None:
    api.upload("alice")
    for since in (
        "2020-01-01",
        "2020-01-01T00:00",
        "2020-01-01T00:00:00Z",
        "2020-01-01 00:00+02:00",
    ):
        answer = api.call("GET", "/photos/export", query={"since": since, "format": "json"})
        assert answer.status == 200, (since, answer.text)
        assert len(answer.json["items"]) == 1
    answer = api.call("GET", "/photos/export", query={"until": "2020-02-30"})
    assert answer.status == 400
    assert "until" in answer.text


def test_a_cursor_from_elsewhere_is_a_400(api: Api) -> None:
    api.upload("alice")
    api.upload("bob")
    answer = api.call("GET", "/photos/export", query={"cursor": "bm90IGEgY3Vyc29y"})
    assert answer.status == 400, answer.text
    # An admin's scan cursor is refused by a user's owner query, and the other way.
    page = api.call(
        "GET", "/photos/export", user="ops", admin=True, query={"limit": "1", "format": "json"}
    )
    scan_cursor = page.json["cursor"]
    assert scan_cursor is not None  # two records, one a page
    mixed = api.call("GET", "/photos/export", query={"cursor": scan_cursor})
    assert mixed.status == 400, mixed.text
