"""GET /gallery (issue 23, part 3) through the api function, from the sample event: a
public page with no user data, whose only script is the one its policy names by hash;
the browser test (tests/integration/test_gallery_browser.py) runs it."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import pytest

from functions.api.gallery import content_security_policy
from shelflife.domain.settings import Settings
from tests.support.api import Api, api_stack
from tests.unit.test_settings import ENV


@pytest.fixture
def api(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    with api_stack(monkeypatch) as stack:
        yield stack


def test_the_page_is_public_and_runs_only_its_own_script(api: Api) -> None:
    page = api.call("GET", "/gallery", user=None)
    assert page.status == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in policy, "the policy lets exactly it run"
    assert "default-src 'none'" in policy
    assert "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script src" not in page.text, "nothing from elsewhere"
    assert re.search(r"\son[a-z]+=", page.text) is None, "no inline handlers (blocked)"
    # The same page whoever asks: it holds no data; the script asks with the token.
    assert api.call("GET", "/gallery").text == page.text


def test_its_script_reaches_the_api_and_the_storage_only() -> None:
    deployed = content_security_policy(Settings.from_env(ENV))
    assert "connect-src 'self' https:;" in deployed
    local = content_security_policy(
        Settings.from_env(
            {
                **ENV,
                "SHELFLIFE_S3_ENDPOINT_URL": "http://127.0.0.1:5123",
                "SHELFLIFE_R2_ENDPOINT_URL": "http://127.0.0.1:5123/",
            }
        )
    )
    assert "connect-src 'self' http://127.0.0.1:5123 https:;" in local
    assert "img-src 'self' data: blob: http://127.0.0.1:5123 https:;" in local
