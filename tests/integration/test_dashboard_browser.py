"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, which
``make test`` installs) loads /dashboard from the api function served on 127.0.0.1
like the HTTP API would, and the charts' SVG elements carry the numbers the JSON
routes return. A screenshot is saved under the test's output."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from shelflife.gateway import Identity, LocalGateway, bearer_tokens
from tests.support.api import HOT, OTHER_PHOTO, PHOTO, TEMP, Api, api_stack
from tests.support.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the machine's closed network needs: no background connections, no first run.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKENS = {
    "admin-token": Identity({"sub": "ops", "cognito:groups": "[admin]"}),
    "alice-token": Identity({"sub": "alice"}),
}


@pytest.fixture
def served(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, str]]:
    with api_stack(monkeypatch) as api:
        gateway = LocalGateway(
            api.app.lambda_handler,
            bearer_tokens(TOKENS),
            context_factory=FakeLambdaContext,
        ).start()
        try:
            yield api, gateway.url
        finally:
            gateway.stop()


@pytest.fixture
def browser_page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make browser` installs Debian's package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            yield page
        finally:
            browser.close()


def attributes(page: Page, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.eval_on_selector_all(
        selector,
        """els => els.map(e => ({...e.dataset, width: e.getBoundingClientRect().width}))""",
    )
    return found


def test_the_dashboard_draws_what_the_json_routes_say(
    served: tuple[Api, str], browser_page: Page, tmp_path: Path
) -> None:
    api, url = served
    api.upload(name=PHOTO)
    api.upload(name=OTHER_PHOTO)
    api.call("POST", "/lifecycle/run", admin=True, body={"dry_run": False})
    api.call("POST", "/capacity/run", admin=True, body={})
    capacity = api.repository.get_bucket("hot", HOT).capacity_bytes
    api.repository.set_bucket_counters("hot", HOT, used_bytes=int(capacity * 0.9), object_count=9)
    stats = api.call("GET", "/stats").json
    buckets = api.call("GET", "/buckets", admin=True).json["buckets"]
    cleanup = api.call("GET", "/cleanup", admin=True).json

    refused = browser_page.goto(f"{url}/dashboard")
    assert refused is not None
    assert refused.status == 401  # no token: the gateway refuses
    browser_page.set_extra_http_headers({"Authorization": "Bearer alice-token"})
    assert browser_page.goto(f"{url}/dashboard").status == 403  # type: ignore[union-attr]
    browser_page.set_extra_http_headers({"Authorization": "Bearer admin-token"})
    response = browser_page.goto(f"{url}/dashboard")
    assert response is not None
    assert response.status == 200

    tiers = {bar["tier"]: bar for bar in attributes(browser_page, "#tier-sizes rect.bar")}
    for tier in stats["tiers"]:
        assert int(tiers[tier["tier"]]["bytes"]) == tier["bytes"]
        assert int(tiers[tier["tier"]]["photos"]) == tier["photos"]
    assert tiers["temp"]["width"] > 0  # drawn, not only written

    fills = {bar["bucket"]: bar for bar in attributes(browser_page, "#bucket-fill rect.fill")}
    assert {name: float(bar["percent"]) for name, bar in fills.items()} == {
        bucket["name"]: bucket["percent"] for bucket in buckets
    }
    assert fills[HOT]["width"] > fills[TEMP]["width"]
    lines = {
        line["threshold"]: float(line["percent"])
        for line in attributes(browser_page, "#bucket-fill line.threshold")
    }
    assert lines == {"cleanup": 85.0, "overflow": 95.0}

    costs = {bar["kind"]: float(bar["usd"]) for bar in attributes(browser_page, "#costs rect.cost")}
    assert costs == {"actual": stats["monthly_cost"], "all-hot": stats["all_hot_monthly_cost"]}
    runs = attributes(browser_page, "#lifecycle-runs g.run")
    assert len(runs) == 1
    assert runs[0]["status"] == "completed"
    health = attributes(browser_page, "#cleanup-health")
    assert health[0]["status"] == cleanup["status"]
    advice = browser_page.locator("#recommendations li[data-code=bucket_near_full]")
    assert advice.count() == 1

    shot = tmp_path / "dashboard.png"
    browser_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"dashboard screenshot: {shot}")
