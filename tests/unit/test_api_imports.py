"""POST /imports (issue 22, part 5): an admin imports an existing bucket through the api,
a dry run first, then a run continued by its run_id until complete; the audit trail
names the admin; every wrong request is a 4xx with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shelflife.domain.records import ImageState
from shelflife.domain.storage import BucketPolicy
from tests.support.api import HOT, Api, api_stack
from tests.support.corpus import corpus_file

SOURCE = "old-photos"
KEYS = {
    "users/alice/a.jpg": "photos/concert.jpg",
    "users/bob/b.jpg": "photos/320x240.jpg",
    "users/bob/c.jpg": "photos/low-contrast.jpg",
}
NEW_IMPORT = {
    "source": {"backend": "s3", "bucket": SOURCE, "prefix": "users/"},
    "owner_pattern": "^users/(?P<owner>[^/]+)/",
}


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        stack.s3.create_bucket(SOURCE, BucketPolicy(tier="hot"))
        for key, name in KEYS.items():
            stack.s3.put(SOURCE, key, corpus_file(name), content_type="image/jpeg")
        yield stack


def post(api: Api, body: dict[str, Any], **kw: Any) -> Any:
    return api.call("POST", "/imports", body=body, **{"admin": True, "user": "root", **kw})


def test_an_admin_imports_a_bucket_dry_run_first(api: Api) -> None:
    dry = post(api, NEW_IMPORT)
    assert dry.status == 200, dry.text
    assert dry.json["dry_run"] is True
    assert dry.json["counts"]["to_import"] == 3
    assert api.repository.all_images().items == []

    answer = post(api, {**NEW_IMPORT, "dry_run": False}).json
    while not answer["complete"]:  # the api's 20 s a step; continued by its run_id
        answer = post(api, {"run_id": answer["run_id"]}).json
    assert answer["counts"]["imported"] == 3
    images = [i for i in api.repository.all_images().items if i.state is ImageState.ACTIVE]
    assert sorted(i.owner for i in images) == ["alice", "bob", "bob"]
    assert {i.location.bucket for i in images if i.location} == {HOT}
    # The trail says who imported them, and from where.
    api.audit.poll()
    (photo,) = [i.id for i in images if i.owner == "alice"]
    history = api.call("GET", f"/photos/{photo}/history").json["items"]
    assert [(e["action"], e["actor"]) for e in history] == [("imported", "admin:root")]
    assert history[0]["reason"] == f"import from s3://{SOURCE}/users/"


def test_only_admins_import(api: Api) -> None:
    assert post(api, NEW_IMPORT, admin=False, user="alice").status == 403


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"source": {"backend": "s3", "bucket": SOURCE}}, 400, "whose photos"),
        ({**NEW_IMPORT, "owner_pattern": "("}, 400, "not a regular expression"),
        ({**NEW_IMPORT, "source": {"backend": "ftp", "bucket": SOURCE}}, 422, "backend"),
        ({**NEW_IMPORT, "source": {"backend": "s3", "bucket": "no-such-bucket"}}, 404, "no bucket"),
        ({**NEW_IMPORT, "source": {"backend": "s3", "bucket": HOT}}, 400, "own buckets"),
        ({"run_id": "20261206T010203Z-0123abcd"}, 404, "no import run"),
        ({"run_id": "soon"}, 400, "not a run id"),
        ({**NEW_IMPORT, "dry_run": "yes"}, 422, "dry_run"),
        ({}, 400, "needs source"),
    ],
)
def test_a_wrong_import_is_refused_with_its_reason(
    api: Api, body: dict[str, Any], status: int, says: str
) -> None:
    answer = post(api, body)
    assert answer.status == status, answer.text
    assert says in answer.text
