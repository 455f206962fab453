"""functions/api/app.py under moto: every route through HTTP API v2 events built from
the samples in events/api/, with the JWT authorizer's claims; admin operations run by
the real lifecycle, capacity and cleanup handlers, invoked in-process the way Lambda
invokes them."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shelflife.domain.pricebook import Shape, book
from shelflife.domain.records import ImageRecord, ImageState, Location
from shelflife.domain.settings import BackendName, TierName
from tests.conftest import R2_ACCOUNT_ID
from tests.support.api import COLD, HOT, OTHER_PHOTO, PHOTO, TEMP, UPLOADS, Api, api_stack
from tests.support.events import load_event
from tests.support.serving import serve_on_r2

ADMIN_ROUTES = [
    ("GET", "/buckets", None),
    ("POST", "/lifecycle/run", {}),
    ("POST", "/lifecycle/reschedule", {}),
    ("POST", "/capacity/run", {}),
    ("POST", "/cleanup/old-images", {"tier": "temp"}),
    ("GET", "/reconcile", None),
    ("POST", "/reconcile", {}),
    ("GET", "/cleanup", None),
    ("POST", "/cleanup/redrive", {}),
    ("GET", "/metrics/recommendations", None),
    ("GET", "/workload", None),
    ("GET", "/dashboard", None),
    ("GET", "/pricing", None),
    (
        "PUT",
        "/pricing",
        {
            "choose": "d",
            "measured": {},
            "strategies": {"x": {"monthly_usd": [0.1], "steady_monthly_usd": 0.1}},
        },
    ),
]


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def form_policy(fields: dict[str, str]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


# ---- public routes and authentication -------------------------------------------------


def test_health_needs_no_token(api: Api) -> None:
    answer = api.send(load_event("api/health.json"))
    assert (answer.status, answer.json["status"]) == (200, "ok")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/photos"), ("POST", "/uploads"), ("GET", "/stats"), ("GET", "/users/me/usage")],
)
def test_a_request_without_identity_is_401(api: Api, method: str, path: str) -> None:
    answer = api.call(method, path, user=None, body={} if method == "POST" else None)
    assert answer.status == 401
    assert answer.json["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_every_admin_route_refuses_a_normal_user(
    api: Api, method: str, path: str, body: Any
) -> None:
    answer = api.call(method, path, body=body)
    assert answer.status == 403, answer.text
    assert answer.json["error"]["code"] == "admin_only"


def test_the_admin_scope_is_as_good_as_the_group(api: Api) -> None:
    event = load_event("api/get-photos.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/buckets"
    event["requestContext"]["authorizer"]["jwt"]["scopes"] = ["shelflife/admin"]
    assert api.send(event).status == 200


def test_an_unknown_route_is_a_json_404(api: Api) -> None:
    answer = api.call("GET", "/nothing/here")
    assert (answer.status, answer.json["error"]["code"]) == (404, "no_route")


def test_a_bug_answers_500_without_a_stack_trace(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.app.services.stats, "stats", broken)
    answer = api.call("GET", "/stats")
    assert answer.status == 500
    assert answer.json["error"]["code"] == "internal"
    assert "secret" not in answer.text
    assert "Traceback" not in answer.text


# ---- uploads --------------------------------------------------------------------------


def test_an_upload_is_a_presigned_post_under_the_callers_prefix(api: Api) -> None:
    answer = api.send(load_event("api/post-uploads.json"))

    assert answer.status == 201, answer.text
    ticket = answer.json
    assert ticket["key"].startswith("incoming/alice/summer-2026/")
    assert ticket["key"].endswith("-beach.jpg")
    assert urlsplit(ticket["url"]).netloc.startswith(UPLOADS)
    conditions = form_policy(ticket["fields"])["conditions"]
    assert ["content-length-range", 1, 25 * 1024**2] in conditions
    assert {"key": ticket["key"]} in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert {"x-amz-meta-draft-id": "summer-2026"} in conditions
    expires = datetime.fromisoformat(ticket["expires_at"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(minutes=15)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"filename": "a.jpg", "content_type": "text/html"}, 422, "validation_failed"),
        ({"filename": "a.jpg", "content_type": "image/bmp"}, 422, "validation_failed"),
        ({"filename": "a.jpg", "content_type": "image/jpeg", "size": 26 * 1024**2}, 413, None),
        ({"filename": "../etc/passwd", "content_type": "image/jpeg"}, 422, None),
        ({"filename": "a.jpg", "content_type": "image/jpeg", "owner": "bob"}, 422, None),
        ({"filename": "a.jpg", "content_type": "image/jpeg", "size": 0}, 422, None),
        ({"content_type": "image/jpeg"}, 422, "validation_failed"),
        ({"filename": "a.jpg", "content_type": "image/jpeg", "draft_id": "a/b"}, 422, None),
    ],
)
def test_a_bad_upload_request_is_a_clear_error(
    api: Api, body: dict[str, Any], status: int, code: str | None
) -> None:
    answer = api.call("POST", "/uploads", body=body)
    assert answer.status == status, answer.text
    assert answer.json["error"]["message"]
    if code:
        assert answer.json["error"]["code"] == code


def test_a_body_that_is_not_json_is_422(api: Api) -> None:
    answer = api.call("POST", "/uploads", raw_body="filename=a.jpg")
    assert answer.status == 422
    assert answer.json["error"]["code"] == "validation_failed"


def test_an_upload_over_the_quota_is_refused_with_403(api: Api) -> None:
    photo = api.upload()
    stored = api.repository.get_image(photo).stored_size
    api.app.services.photos.settings = api.app.settings.model_copy(
        update={"user_quota_bytes": stored + 100}
    )

    ticket = api.call("POST", "/uploads", body={"filename": "b.jpg", "content_type": "image/jpeg"})
    assert ticket.status == 201
    assert ["content-length-range", 1, 100] in form_policy(ticket.json["fields"])["conditions"]
    refused = api.call(
        "POST", "/uploads", body={"filename": "b.jpg", "content_type": "image/jpeg", "size": 101}
    )
    assert refused.status == 403
    assert refused.json["error"]["code"] == "quota_exceeded"
    assert "quota" in refused.json["error"]["message"]
    usage = api.call("GET", "/users/me/usage").json
    assert (usage["quota_bytes"], usage["remaining_bytes"]) == (stored + 100, 100)


# ---- photos ---------------------------------------------------------------------------


def test_an_uploaded_photo_is_listed_read_and_linked_and_counts_its_access(api: Api) -> None:
    photo = api.upload()

    listed = api.call("GET", "/photos", query={"limit": "10"})
    assert [item["id"] for item in listed.json["items"]] == [photo]
    one = api.call("GET", f"/photos/{photo}").json
    assert (one["state"], one["tier"], one["access_count"]) == ("active", "temp", 0)

    link = api.call("GET", f"/photos/{photo}/url")

    assert link.status == 200
    expires = datetime.fromisoformat(link.json["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    query = parse_qs(urlsplit(link.json["url"]).query)
    assert int(query["X-Amz-Expires"][0]) == 900
    record = api.repository.get_image(photo)
    assert record.access_count == 1
    assert record.last_accessed_at is not None
    short = api.call("GET", f"/photos/{photo}/url", query={"expires_in": "60"}).json
    assert parse_qs(urlsplit(short["url"]).query)["X-Amz-Expires"] == ["60"]
    # A draft's URL lasts 900 s at most (the schema's bound is a published photo's).
    too_long = api.call("GET", f"/photos/{photo}/url", query={"expires_in": "1000"})
    assert too_long.status == 400
    assert "between 1 and 900 seconds" in too_long.json["error"]["message"]
    beyond = api.call("GET", f"/photos/{photo}/url", query={"expires_in": str(86400 + 1)})
    assert beyond.status == 422


def test_a_published_photos_url_lasts_a_day(api: Api) -> None:
    photo = api.upload(draft_id="d1")
    api.call("POST", "/drafts/d1/publish", body={"photo_ids": [photo]})

    link = api.call("GET", f"/photos/{photo}/url").json

    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    assert parse_qs(urlsplit(link["url"]).query)["X-Amz-Expires"] == ["86400"]
    short = api.call("GET", f"/photos/{photo}/url", query={"expires_in": "1000"}).json
    assert parse_qs(urlsplit(short["url"]).query)["X-Amz-Expires"] == ["1000"]


def test_pages_of_photos_follow_the_cursor(api: Api) -> None:
    first = api.upload(name=PHOTO)
    second = api.upload(name=OTHER_PHOTO)
    page = api.call("GET", "/photos", query={"limit": "1"}).json
    rest = api.call("GET", "/photos", query={"limit": "1", "cursor": page["cursor"]}).json
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {first, second}
    assert api.call("GET", "/photos", query={"limit": "0"}).status == 422


def test_another_users_photo_is_404_on_every_route(api: Api) -> None:
    photo = api.upload(user="alice")
    api.upload(user="bob")

    for method, path in (
        ("GET", f"/photos/{photo}"),
        ("GET", f"/photos/{photo}/url"),
        ("DELETE", f"/photos/{photo}"),
    ):
        answer = api.call(method, path, user="bob")
        assert answer.status == 404, (method, path)
        assert photo not in json.dumps(answer.json["error"]).replace(f"'{photo}'", "")
    assert photo not in [
        item["id"] for item in api.call("GET", "/photos", user="bob").json["items"]
    ]
    published = api.call("POST", "/drafts/d1/publish", user="bob", body={"photo_ids": [photo]}).json
    assert published["failed"] == [{"id": photo, "reason": "not found"}]
    record = api.repository.get_image(photo)
    assert (record.state, record.access_count, record.published_at) == (
        ImageState.ACTIVE,
        0,
        None,
    )


def test_a_deleted_photo_is_gone_for_its_owner_and_uncounted(api: Api) -> None:
    photo = api.upload()
    assert api.repository.get_bucket("temp", TEMP).object_count == 1

    deleted = api.call("DELETE", f"/photos/{photo}")

    assert (deleted.status, deleted.json["state"]) == (200, "deleted")
    assert api.call("GET", f"/photos/{photo}").status == 404
    assert api.call("DELETE", f"/photos/{photo}").status == 200  # again: same answer
    assert api.repository.get_bucket("temp", TEMP).object_count == 0
    record = api.repository.get_image(photo)
    assert record.state is ImageState.DELETED
    assert record.expires_at is not None  # the table's TTL removes it later


def test_publishing_a_draft_schedules_its_deletion_once(api: Api) -> None:
    photo = api.upload(draft_id="summer-2026")
    other = api.upload(name=OTHER_PHOTO)
    event = load_event("api/publish-draft.json")
    event["body"] = json.dumps({"photo_ids": [photo, other, "nope"]})

    answer = api.send(event).json

    assert answer["updated"] == [photo]
    assert {item["id"]: item["reason"] for item in answer["failed"]} == {
        other: "not a photo of draft 'summer-2026'",
        "nope": "not found",
    }
    record = api.repository.get_image(photo)
    assert record.published_at is not None
    assert record.due_at == record.published_at + timedelta(days=7)
    again = api.send(event).json
    assert again["updated"] == [photo]
    assert api.repository.get_image(photo).published_at == record.published_at
    empty = api.call("POST", "/drafts/summer-2026/publish", body={"photo_ids": []})
    assert empty.status == 422


def test_with_serve_backend_r2_publishing_has_the_lifecycle_move_the_photo_to_r2(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_on_r2(monkeypatch)
    with api_stack(monkeypatch) as api:
        photo = api.upload(draft_id="summer-2026")
        event = load_event("api/publish-draft.json")
        event["body"] = json.dumps({"photo_ids": [photo]})

        answer = api.send(event).json

        assert answer["updated"] == [photo]
        record = api.repository.get_image(photo)
        assert record.location is not None
        assert (record.location.backend, record.location.bucket) == (
            BackendName.R2,
            "shelflife-serve",
        )
        url = api.call("GET", f"/photos/{photo}/url").json["url"]
        assert "shelflife-serve" in url
        assert R2_ACCOUNT_ID in url  # signed by R2, where the bytes are


def test_a_publish_stands_when_the_lifecycle_cannot_be_asked_to_serve(api: Api) -> None:
    from shelflife.domain.errors import Throttled
    from shelflife.domain.records import ImageAction

    photo = api.upload(draft_id="summer-2026")
    api.app.services.photos.settings = api.app.settings.model_copy(
        update={
            "serve": api.app.settings.hot.model_copy(
                update={"backend": BackendName.R2, "bucket": "shelflife-serve"}
            ),
            "serve_published": "always",
        }
    )

    def refused(function: str, event: Any) -> None:
        raise Throttled("Rate exceeded", backend="lambda")

    api.app.services.operations.invoker.invoke_async = refused
    answer = api.call("POST", "/drafts/summer-2026/publish", body={"photo_ids": [photo]})

    assert (answer.status, answer.json["updated"]) == (200, [photo])
    record = api.repository.get_image(photo)
    assert record.published_at is not None
    assert record.next_action is ImageAction.SERVE  # the daily sweep moves it


def test_usage_counts_the_callers_photos_by_tier(api: Api) -> None:
    photo = api.upload()
    api.upload(user="bob")
    usage = api.call("GET", "/users/me/usage").json
    stored = api.repository.get_image(photo).stored_size
    assert usage["tiers"]["temp"] == {"photos": 1, "bytes": stored}
    assert (usage["photos"], usage["bytes"], usage["quota_bytes"]) == (1, stored, None)


# ---- stats, metrics, tiers ------------------------------------------------------------


def cold_image(api: Api, size: int) -> None:
    api.repository.add_image(
        ImageRecord(
            id="cold-1",
            owner="carol",
            location=Location(tier=TierName.COLD, backend=BackendName.S3, bucket=COLD, key="k"),
            stored_size=size,
            uploaded_at=datetime.now(UTC) - timedelta(days=200),
        )
    )


def test_stats_sum_the_bucket_counters_and_price_them(api: Api) -> None:
    photo = api.upload()
    api.call("POST", "/capacity/run", admin=True, body={})  # records the other tiers' buckets
    cold_image(api, 3 * 1024**3)
    stored = api.repository.get_image(photo).stored_size

    stats = api.send(load_event("api/get-stats.json")).json

    tiers = {tier["tier"]: tier for tier in stats["tiers"]}
    assert (tiers["temp"]["photos"], tiers["temp"]["bytes"]) == (1, stored)
    assert tiers["cold"]["bytes"] == 3 * 1024**3
    # TEMP on S3 Standard (0.023); COLD on S3 stores in Glacier Instant Retrieval
    # (0.004): each tier priced as the offer it writes to.
    expected = round((0.023 * stored + 0.004 * 3 * 1024**3) / 1024**3, 6)
    assert stats["monthly_cost"] == pytest.approx(expected, abs=1e-6)
    breakdown = api.call("GET", "/stats/breakdown").json["tiers"]
    assert sum(item["share_of_bytes"] for item in breakdown) == pytest.approx(1, abs=1e-3)


def test_savings_against_keeping_everything_in_hot(api: Api) -> None:
    api.app.services.stats.settings = api.app.settings.model_copy(
        update={"cold": api.app.settings.cold.model_copy(update={"backend": BackendName.B2})}
    )
    api.call("POST", "/capacity/run", admin=True, body={})  # records every tier's bucket
    cold_image(api, 10 * 1024**3)
    stats = api.call("GET", "/stats").json
    assert stats["all_hot_monthly_cost"] == pytest.approx(0.23)
    assert stats["monthly_cost"] == pytest.approx(0.06)
    assert stats["monthly_savings"] == pytest.approx(0.17)
    # Issue 21, part 4: the figure names its baseline, and the stack's own fixed bill
    # (from the price book, for this deployment: COLD on B2 needs the keys' parameter,
    # free; lean monitoring) is shown beside it.
    assert stats["baseline"].startswith("the same stored bytes all in HOT (s3_standard, 0.023")
    assert "storage only" in stats["baseline"]
    fixed = book().stack_fixed_monthly(Shape(credentials=True))
    assert stats["stack_fixed_monthly_cost"] == pytest.approx(fixed, abs=1e-6)
    assert 0 < fixed < book().stack_fixed_monthly(Shape(full_monitoring=True))
    assert stats["prices_checked"] == book().transfer.checked


def test_lifecycle_metrics_count_uploads_and_runs(api: Api) -> None:
    api.upload()
    api.call("DELETE", f"/photos/{api.upload(name=OTHER_PHOTO)}")
    run = api.send(load_event("api/post-lifecycle-run.json"))
    assert run.status == 200
    assert run.json["dry_run"] is True
    api.call("POST", "/lifecycle/run", admin=True, body={"dry_run": False})

    counts = api.call("GET", "/metrics/lifecycle", query={"days": "7"}).json["counts"]

    assert (counts["uploaded"], counts["deleted_by_owner"], counts["lifecycle_runs"]) == (2, 1, 1)
    assert api.call("GET", "/metrics/lifecycle", query={"days": "0"}).status == 422
    assert api.call("GET", "/metrics/lifecycle", query={"days": "many"}).status == 422


def test_tiers_describe_the_settings(api: Api) -> None:
    tiers = api.call("GET", "/tiers").json
    assert [(t["tier"], t["price_per_gb_month"]) for t in tiers["tiers"]] == [
        ("temp", 0.023),
        ("hot", 0.023),
        ("cold", 0.004),  # COLD on S3: Glacier Instant Retrieval
    ]
    rules = {rule["rule"]: rule for rule in tiers["rules"]}
    assert rules["promote"]["after_hours"] == 48
    assert rules["archive"]["after_days_without_access"] == 90
    assert rules["expire"]["after_days"] == 365


# ---- admin ----------------------------------------------------------------------------


def test_buckets_and_recommendations_show_a_bucket_past_its_line(api: Api) -> None:
    api.call("POST", "/capacity/run", admin=True, body={})
    capacity = api.repository.get_bucket("hot", HOT).capacity_bytes
    api.repository.set_bucket_counters("hot", HOT, used_bytes=int(capacity * 0.9), object_count=1)

    buckets = {b["name"]: b for b in api.call("GET", "/buckets", admin=True).json["buckets"]}
    advice = api.call("GET", "/metrics/recommendations", admin=True).json["items"]

    assert buckets[HOT]["percent"] == 90.0
    assert (
        buckets[HOT]["cleanup_threshold_percent"],
        buckets[HOT]["overflow_threshold_percent"],
    ) == (
        85,
        95,
    )
    assert any(item["code"] == "bucket_near_full" and HOT in item["message"] for item in advice)


def test_admin_runs_are_done_by_their_functions(api: Api) -> None:
    api.upload()
    capacity = api.call("POST", "/capacity/run", admin=True, body={"dry_run": True}).json
    assert {b["name"] for b in capacity["buckets"]} >= {TEMP, HOT, COLD}
    cleanup = api.call("POST", "/cleanup/old-images", admin=True, body={"tier": "temp"}).json
    assert cleanup["dry_run"] is True
    assert cleanup["cleanups"][0]["bucket"] == TEMP
    bad = api.call("POST", "/cleanup/old-images", admin=True, body={"tier": "temp", "bucket": "x"})
    assert bad.status == 404  # the capacity function's RecordNotFound, passed on

    assert api.call("GET", "/reconcile", admin=True).status == 404  # none yet
    report = api.call("POST", "/reconcile", admin=True, body={}).json
    assert (report["complete"], report["dry_run"], report["counts"]["records"]) == (True, True, 1)
    latest = api.call("GET", "/reconcile", admin=True).json
    assert (latest["run_id"], latest["status"]) == (report["run_id"], "completed")

    status = api.call("GET", "/cleanup", admin=True).json
    assert (status["status"], status["dead_letters"]) == ("ok", 0)
    redrive = api.call("POST", "/cleanup/redrive", admin=True, body={"max_messages": 5}).json
    assert redrive["completed"] == 0
    assert api.call("POST", "/cleanup/redrive", admin=True, body={"max_messages": 0}).status == 422


def test_an_admin_run_without_its_function_is_503(api: Api) -> None:
    api.app.services.operations.settings = api.app.settings.model_copy(
        update={"lifecycle_function_name": None}
    )
    answer = api.call("POST", "/lifecycle/run", admin=True, body={})
    assert answer.status == 503
    assert "SHELFLIFE_LIFECYCLE_FUNCTION_NAME" in answer.json["error"]["message"]


def test_the_dashboard_is_html_with_its_charts(api: Api) -> None:
    api.upload()
    answer = api.send(load_event("api/get-dashboard.json"))
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    for chart in ("tier-sizes", "bucket-fill", "costs", "lifecycle-runs", "cleanup-health"):
        assert f'id="{chart}"' in answer.text
    # Live by default: its one inline script, and the policy lets that one run only.
    page, policy = answer.text, answer.headers["Content-Security-Policy"]
    assert page.count("<script") == 1
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    allowed = policy.split("script-src ", 1)[1].split(";", 1)[0]
    assert allowed == f"'sha256-{digest}'"
    assert "connect-src 'self'" in policy
    assert 'data-refresh="60"' in page
    assert f'content="{policy}"' in page  # the page's own meta says the same


def test_the_dashboard_refreshes_as_asked_and_without_a_script_when_told(api: Api) -> None:
    every = api.call("GET", "/dashboard", admin=True, query={"refresh": "5"})
    assert every.status == 200
    assert 'data-refresh="5"' in every.text
    still = api.call("GET", "/dashboard", admin=True, query={"refresh": "0"})
    assert still.status == 200
    assert "<script" not in still.text
    assert still.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    for wrong in ("-1", "3601", "soon", "1.5"):
        answer = api.call("GET", "/dashboard", admin=True, query={"refresh": wrong})
        assert answer.status == 422, (wrong, answer.status)
        assert "refresh" in answer.text


def test_with_a_cdn_the_url_is_the_cdns_and_the_access_is_recorded(api: Api) -> None:
    photo = api.upload()
    api.app.services.photos.settings = api.app.settings.model_copy(
        update={"cdn_base_url": "https://cdn.example.com"}
    )
    answer = api.call("GET", f"/photos/{photo}/url").json
    key = api.repository.get_image(photo).location
    assert key is not None
    assert answer == {"id": photo, "url": f"https://cdn.example.com/{key.key}", "expires_at": None}
    assert api.repository.get_image(photo).access_count == 1


def test_a_lost_photo_has_no_url_and_says_why(api: Api) -> None:
    photo = api.upload()
    record = api.repository.get_image(photo)
    api.repository.replace_image(record, record.model_copy(update={"state": ImageState.LOST}))

    answer = api.call("GET", f"/photos/{photo}/url")

    assert answer.status == 409
    assert answer.json["error"] == {
        "code": "conflict",
        "message": f"photo {photo!r} is lost: it has no stored image",
    }
    lost = api.call("GET", f"/photos/{photo}").json
    assert (lost["state"], lost["access_count"]) == ("lost", 0)  # nothing was read


def test_a_body_that_is_not_utf8_is_400_not_500(api: Api) -> None:
    event = load_event("api/post-uploads.json")
    event["body"] = base64.b64encode(b"\x80\x81\xfe").decode()
    event["isBase64Encoded"] = True
    answer = api.send(event)
    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_body")


def test_a_known_path_with_another_method_is_405_with_allow(api: Api) -> None:
    answer = api.call("PUT", "/photos")
    assert (answer.status, answer.json["error"]["code"]) == (405, "method_not_allowed")
    assert answer.headers["Allow"] == "GET"


@pytest.mark.parametrize("method", ["DELETE", "OPTIONS", "PUT"])
def test_a_static_path_is_not_a_photo_id_for_another_method(api: Api, method: str) -> None:
    # Found by schemathesis: /photos/export also matches /photos/<photo_id>, which
    # advertised DELETE and GET twice in Allow, and took DELETE as a photo's.
    answer = api.call(method, "/photos/export")
    assert (answer.status, answer.json["error"]["code"]) == (405, "method_not_allowed")
    assert answer.headers["Allow"] == "GET"
    photo = api.call("OPTIONS", "/photos/abc")
    assert photo.headers["Allow"] == "DELETE, GET"


@pytest.mark.parametrize("kind", ["text/plain", "multipart/form-data", "application/xml"])
def test_a_body_that_is_not_json_by_its_type_is_415(api: Api, kind: str) -> None:
    # multipart/form-data without a boundary made Powertools raise (found by schemathesis)
    event = load_event("api/post-uploads.json")
    event["headers"]["content-type"] = kind
    answer = api.send(event)
    assert (answer.status, answer.json["error"]["code"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/lifecycle/run", {"dry_run": 0}),
        ("/cleanup/old-images", {"tier": "temp", "dry_run": "false"}),
        ("/reconcile", {"fix": 1}),
    ],
)
def test_flags_that_decide_deletions_take_true_or_false_only(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    # Found by schemathesis: {"dry_run": 0} ran a real sweep.
    answer = api.call("POST", path, admin=True, body=body)
    assert (answer.status, answer.json["error"]["code"]) == (422, "validation_failed")


def test_an_empty_query_value_is_refused_not_taken_for_the_default(api: Api) -> None:
    # Found by schemathesis: ?days= answered the 30-day default.
    answer = api.call("GET", "/metrics/lifecycle", query={"days": ""})
    assert (answer.status, answer.json["error"]["message"]) == (422, "query.days: empty value")


def test_a_reschedule_runs_in_the_lifecycle_function(api: Api) -> None:
    api.upload()

    answer = api.send(load_event("api/post-lifecycle-reschedule.json"))

    assert answer.status == 200
    assert (answer.json["reschedule"], answer.json["dry_run"]) == (True, True)
    assert answer.json["counts"]["unchanged"] == 1  # the settings did not change
    assert api.call("POST", "/lifecycle/reschedule", body={}).status == 403


def test_the_workload_is_measured_from_the_counters(api: Api) -> None:
    published = api.upload(draft_id="d1")
    api.upload(name=OTHER_PHOTO, draft_id="d1")
    answer = api.call("POST", "/drafts/d1/publish", body={"photo_ids": [published]})
    assert answer.status == 200
    for _ in range(3):
        assert api.call("GET", f"/photos/{published}/url").status == 200

    workload = api.call("GET", "/workload", admin=True, query={"days": "30"}).json

    assert (workload["uploads"], workload["published"], workload["published_views"]) == (2, 1, 3)
    assert (workload["publish_rate"], workload["views_per_published"]) == (0.5, 3.0)
    assert workload["publish_within_days"] == 1  # published right after the upload
    assert workload["photos"] == 2
    assert workload["mean_stored_bytes"] == workload["stored_bytes"] // 2
    assert api.call("GET", "/workload", admin=True, query={"days": "0"}).status == 422
    # The dashboard's recommendations say what serving them from S3 costs.
    items = api.call("GET", "/metrics/recommendations", admin=True).json["items"]
    [serving] = [item for item in items if item["code"] == "serving_costs"]
    assert serving["severity"] == "info"
    assert "3.0 days each" in serving["message"]
    assert "ServeBackend=r2" in serving["message"]


PRICING: dict[str, Any] = {
    "choose": "defaults",
    "measured": {"days": 60, "uploads_per_month": 1000.0, "views_per_published": 0.0},
    "strategies": {
        "shelflife (defaults)": {"monthly_usd": [0.01, 0.05, 0.08], "steady_monthly_usd": 0.08},
        "s3_intelligent_tiering": {"monthly_usd": [0.02, 0.06, 0.09], "steady_monthly_usd": 0.09},
    },
}


def test_a_pricing_of_the_workload_is_kept_and_drawn_on_the_dashboard(api: Api) -> None:
    assert api.call("GET", "/pricing", admin=True).status == 404
    page = api.call("GET", "/dashboard", admin=True).text
    assert 'id="pricing" data-priced="false"' in page
    kept = api.call("PUT", "/pricing", admin=True, body=PRICING)
    assert kept.status == 200
    answer = api.call("GET", "/pricing", admin=True).json
    assert answer["strategies"] == PRICING["strategies"]
    assert answer["priced_at"] == kept.json["priced_at"]
    page = api.call("GET", "/dashboard", admin=True).text
    assert 'data-choose="defaults"' in page
    for name, figures in PRICING["strategies"].items():
        assert f'data-strategy="{name}" data-steady-usd="{figures["steady_monthly_usd"]:.6f}"' in (
            page
        )
    # The newest is the one shown.
    newer = {**PRICING, "choose": "ServeBackend=r2"}
    assert api.call("PUT", "/pricing", admin=True, body=newer).status == 200
    assert api.call("GET", "/pricing", admin=True).json["choose"] == "ServeBackend=r2"


@pytest.mark.parametrize(
    "change",
    [
        {"choose": ""},
        {"choose": "<script>"},
        {"strategies": {}},
        {"strategies": {"x": {"monthly_usd": [-1.0], "steady_monthly_usd": 0.1}}},
        {"strategies": {"x": {"monthly_usd": [], "steady_monthly_usd": 0.1}}},
        {"strategies": {"x": {"monthly_usd": [0.1] * 121, "steady_monthly_usd": 0.1}}},
        {"strategies": {"x": {"monthly_usd": [0.1], "steady_monthly_usd": "NaN"}}},
        {"strategies": {"x": {"monthly_usd": [0.1], "steady_monthly_usd": False}}},
        {"strategies": {"x": {"monthly_usd": ["0.1"], "steady_monthly_usd": 0.1}}},
        {"measured": {"days": True}},
        {"strategies": {"x": {"monthly_usd": [0.1], "steady_monthly_usd": 0.1, "extra": 1}}},
        {"measured": {"Bad Key": 1}},
        {"unknown": 1},
    ],
)
def test_a_pricing_that_cannot_be_right_is_refused_clearly(
    api: Api, change: dict[str, object]
) -> None:
    answer = api.call("PUT", "/pricing", admin=True, body={**PRICING, **change})
    assert answer.status in (400, 422), answer.json
    assert answer.json["error"]["message"]
    assert api.call("GET", "/pricing", admin=True).status == 404
