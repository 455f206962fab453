"""GET /photos/{id}/image (issue 23, part 2) through the api function on moto, from
events/api/get-photo-image.json: a redirect to the variant's signed URL, the format
chosen by Accept, JSON for clients that cannot follow with a token, srcset-ready URLs
in photo answers, usage, and every wrong request a 4xx saying why."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.support.api import HOT, OTHER_PHOTO, Answer, Api, api_stack
from tests.support.events import load_event


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def image(
    api: Api,
    photo_id: str,
    query: dict[str, str],
    *,
    accept: str | None = None,
    user: str = "alice",
) -> Answer:
    """The sample event for ``photo_id`` with ``query`` (and ``accept``, else the
    sample's browser Accept header)."""
    event: dict[str, Any] = load_event("api/get-photo-image.json")
    path = f"/photos/{photo_id}/image"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    if accept is not None:
        event["headers"]["accept"] = accept
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = user
    return api.send(event)


def where(url: str) -> tuple[str, str]:
    """The bucket and key a signed S3 URL names (virtual-hosted, or path-style)."""
    parts = urlsplit(url)
    host = parts.netloc.split(".s3.")[0]
    if host != parts.netloc:
        return host, parts.path.lstrip("/")
    bucket, _, key = parts.path.lstrip("/").partition("/")
    return bucket, key


def fetched(api: Api, url: str) -> bytes:
    return api.s3.get(*where(url)).data


def test_the_first_request_renders_and_redirects_and_later_ones_reuse_it(api: Api) -> None:
    photo_id = api.upload(name=OTHER_PHOTO)  # 1920 x 1080

    first = image(api, photo_id, {"w": "320", "fit": "cover", "format": "auto"})
    assert first.status == 302, first.text
    assert first.headers["Vary"] == "Accept"
    assert first.headers["Cache-Control"].startswith("private, max-age=")
    location = first.headers["Location"]
    bucket, key = where(location)
    assert bucket == HOT
    assert key.startswith(f"variants/{photo_id}/320x320-cover-")
    with Image.open(io.BytesIO(fetched(api, location))) as rendered:
        # The sample's Accept names AVIF first: the smallest format the browser takes.
        assert (rendered.format, rendered.size) == ("AVIF", (320, 320))

    again = image(api, photo_id, {"w": "320", "fit": "cover", "redirect": "false"})
    assert again.status == 200, again.text
    body = again.json
    assert (body["name"], body["rendered"], body["format"]) == (
        "320x320-cover.avif",
        False,
        "avif",
    )
    assert urlsplit(body["url"]).path == urlsplit(location).path, "the stored one, signed again"

    photo = api.call("GET", f"/photos/{photo_id}").json
    assert photo["variants"] == ["320x320-cover.avif"]
    usage = api.call("GET", "/users/me/usage").json
    assert (usage["variants"], usage["variant_bytes"]) == (1, body["bytes"])


def test_format_follows_accept_unless_asked(api: Api) -> None:
    photo_id = api.upload()
    chosen = {}
    for accept in ("image/webp,*/*", "image/*", "text/html"):
        answer = image(api, photo_id, {"w": "160", "redirect": "false"}, accept=accept)
        assert answer.status == 200, answer.text
        chosen[accept] = answer.json["content_type"]
    assert chosen == {
        "image/webp,*/*": "image/webp",
        "image/*": "image/jpeg",
        "text/html": "image/jpeg",
    }
    asked = image(api, photo_id, {"w": "160", "format": "jpeg", "redirect": "false"})
    assert asked.json["content_type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("name", "widths"), [(OTHER_PHOTO, [160, 320, 640, 1280]), ("photos/concert.jpg", [160, 320])]
)
def test_photo_answers_carry_srcset_ready_urls_up_to_the_photo_s_width(
    api: Api, name: str, widths: list[int]
) -> None:
    photo_id = api.upload(name=name)
    photo = api.call("GET", f"/photos/{photo_id}").json
    listed = api.call("GET", "/photos").json["items"][0]
    assert listed["srcset"] == photo["srcset"]
    candidates = [part.split(" ") for part in photo["srcset"].split(", ")]
    # No candidate claims more pixels than the photo has (1920 and 400 wide).
    assert [int(descriptor.removesuffix("w")) for _, descriptor in candidates] == widths
    for url, descriptor in candidates:
        query = dict(pair.split("=") for pair in urlsplit(url).query.split("&"))
        answer = image(api, photo_id, {**query, "redirect": "false"})
        assert answer.status == 200, (url, answer.text)
        assert descriptor == f"{query['w']}w"


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ({"w": "333"}, 400, "w must be one of 160, 320, 640, 1280, 2000"),
        ({"w": "320", "h": "100"}, 400, "h must be one of"),
        ({"w": "320", "fit": "stretch"}, 422, "fit"),
        ({"w": "320", "format": "gif"}, 422, "format"),
        ({"w": "big"}, 422, "w"),
        ({}, 422, "w"),
        ({"w": "320", "redirect": "perhaps"}, 422, "redirect"),
    ],
)
def test_a_wrong_request_is_a_4xx_that_says_why(
    api: Api, query: dict[str, str], status: int, says: str
) -> None:
    photo_id = api.upload()
    answer = image(api, photo_id, query)
    assert answer.status == status, answer.text
    assert says in answer.json["error"]["message"]
    assert api.repository.get_image(photo_id).variants == (), "nothing was stored"


def test_another_user_s_photo_or_a_deleted_one_is_not_found(api: Api) -> None:
    photo_id = api.upload()
    assert image(api, photo_id, {"w": "160"}, user="bob").status == 404
    assert api.call("DELETE", f"/photos/{photo_id}").status == 200
    assert image(api, photo_id, {"w": "160"}).status == 404
    assert image(api, "no-such-photo", {"w": "160"}).status == 404
