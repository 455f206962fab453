"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, which
``make test`` installs) loads /dashboard from the local stack's API on 127.0.0.1, after
the corpus went through part of its lifecycle, and the charts' SVG elements carry the
numbers the JSON routes return. The screenshot is saved under the test's output (and
to ``$SHELFLIFE_SCREENSHOT`` when set: that is how docs/dashboard.png is made)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from shelflife.domain import clock
from shelflife_tools.client import ApiClient
from shelflife_tools.local.stack import LocalStack
from shelflife_tools.recommend import pricing, recommend
from tests.support.corpus import CORPUS

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


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(api_port=0, folder=tmp_path / "local") as running:
        running.serve(interval=0.05)
        yield running


@pytest.fixture
def browser_page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make browser` installs Debian's package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 1000})
        finally:
            browser.close()


def attributes(page: Page, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.eval_on_selector_all(
        selector,
        """els => els.map(e => ({...e.dataset, width: e.getBoundingClientRect().width}))""",
    )
    return found


def live_a_little(stack: LocalStack) -> None:
    """The photos through TEMP, HOT and COLD; the camera images uploaded since."""
    client = ApiClient(stack.api_url, stack.token("alice"))
    # From noon: the last hour below never crosses the daily sweep's 03:00, which ran a
    # second sweep inside the chart's 30 days when CI ran between 01:00 and 02:00 UTC.
    now = clock.now()
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    stack.advance(noon - now if noon > now else noon + timedelta(days=1) - now)
    for path in sorted((CORPUS / "photos").iterdir()):
        assert client.upload(path, wait=60).placed
    stack.advance(timedelta(hours=49))
    stack.advance(timedelta(days=91))
    for path in sorted((CORPUS / "camera").iterdir()):
        assert client.upload(path, wait=60).placed
    stack.advance(timedelta(hours=1))  # a capacity check (hourly by default)


def test_the_dashboard_draws_what_the_json_routes_say(
    stack: LocalStack, browser_page: Page, tmp_path: Path
) -> None:
    live_a_little(stack)
    admin = ApiClient(stack.api_url, stack.token("ops", admin=True))
    stats = admin.get("/stats")
    buckets = admin.get("/buckets")["buckets"]
    cleanup = admin.get("/cleanup")
    advice = admin.get("/metrics/recommendations")["items"]
    # What `shelflife recommend` keeps: this workload priced by the simulator.
    priced = pricing(recommend(admin.get("/workload"), 2))
    admin.put("/pricing", priced)
    url = f"{stack.api_url}/dashboard"

    refused = browser_page.goto(url)
    assert refused is not None
    assert refused.status == 401  # no token: the gateway's authorizer refuses
    browser_page.set_extra_http_headers({"Authorization": f"Bearer {stack.token('alice')}"})
    forbidden = browser_page.goto(url)
    assert forbidden is not None
    assert forbidden.status == 403
    browser_page.set_extra_http_headers({"Authorization": f"Bearer {admin.token}"})
    response = browser_page.goto(url)
    assert response is not None
    assert response.status == 200

    tiers = {bar["tier"]: bar for bar in attributes(browser_page, "#tier-sizes rect.bar")}
    for tier in stats["tiers"]:
        assert int(tiers[tier["tier"]]["bytes"]) == tier["bytes"]
        assert int(tiers[tier["tier"]]["photos"]) == tier["photos"]
        assert (tiers[tier["tier"]]["width"] > 0) == (tier["bytes"] > 0)  # drawn
    assert stats["tiers"][0]["photos"] > 0  # TEMP: the camera images
    assert stats["tiers"][2]["photos"] > 0  # COLD: the archived photos
    fills = {bar["bucket"]: bar for bar in attributes(browser_page, "#bucket-fill rect.fill")}
    assert {name: float(bar["percent"]) for name, bar in fills.items()} == {
        bucket["name"]: bucket["percent"] for bucket in buckets
    }
    lines = {
        line["threshold"]: float(line["percent"])
        for line in attributes(browser_page, "#bucket-fill line.threshold")
    }
    assert lines == {"cleanup": 85.0, "overflow": 95.0}
    costs = {bar["kind"]: float(bar["usd"]) for bar in attributes(browser_page, "#costs rect.cost")}
    assert costs == {"actual": stats["monthly_cost"], "all-hot": stats["all_hot_monthly_cost"]}
    runs = attributes(browser_page, "#lifecycle-runs g.run")
    # The chart shows 30 days: the run after +91 days; the one after +49 hours is older.
    assert len(runs) == 1
    counts = attributes(browser_page, "#lifecycle-runs rect.count")
    # COLD is Glacier Instant Retrieval: the photos too small for that move to pay stay
    # in HOT, so the run archived fewer than it examined (at least the large one).
    archived = admin.get("/metrics/lifecycle", days=30)["counts"]["archived"]
    photos = len([p for p in (CORPUS / "photos").iterdir() if p.is_file()])
    assert 1 <= archived < photos
    assert [(c["count"], int(c["value"])) for c in counts] == [("archived", archived)]
    health = attributes(browser_page, "#cleanup-health")
    assert health[0]["status"] == cleanup["status"]
    shown = browser_page.eval_on_selector_all(
        "#recommendations li[data-code]", "els => els.map(e => e.dataset.code)"
    )
    assert shown == [item["code"] for item in advice]

    lines_drawn = attributes(browser_page, "#pricing polyline.strategy")
    assert {line["strategy"]: float(line["steadyUsd"]) for line in lines_drawn} == {
        name: pytest.approx(figures["steady_monthly_usd"], abs=1e-6)
        for name, figures in priced["strategies"].items()
    }
    assert all(line["width"] > 0 for line in lines_drawn)

    shot = tmp_path / "dashboard.png"
    browser_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("SHELFLIFE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["SHELFLIFE_SCREENSHOT"])


def test_an_open_dashboard_shows_a_new_upload_without_a_reload(
    stack: LocalStack, browser_page: Page
) -> None:
    """Issue 22, part 4: the page refreshes its own figures. Its script runs under the
    page's policy (a wrong hash would stop it: nothing would change) and swaps them in
    place: a value set on the window before the upload is still there after it."""
    admin = ApiClient(stack.api_url, stack.token("ops", admin=True))
    browser_page.set_extra_http_headers({"Authorization": f"Bearer {admin.token}"})
    blocked: list[str] = []
    browser_page.on("console", lambda message: blocked.append(message.text))
    response = browser_page.goto(f"{stack.api_url}/dashboard?refresh=1")
    assert response is not None
    assert response.status == 200
    assert browser_page.get_attribute("#figures", "data-photos") == "0"
    browser_page.evaluate("window.sameDocument = true")

    client = ApiClient(stack.api_url, stack.token("alice"))
    photo = next(p for p in sorted((CORPUS / "photos").iterdir()) if p.suffix == ".jpeg")
    assert client.upload(photo, wait=60).placed
    # A selector, not a function: the page's policy forbids eval, which that would need.
    browser_page.wait_for_selector("#figures[data-photos='1']", timeout=30_000)

    assert browser_page.evaluate("window.sameDocument") is True  # not reloaded
    assert browser_page.get_attribute("#updated", "data-state") == "ok"
    assert (browser_page.text_content("#updated") or "").startswith("updated ")
    fill = attributes(browser_page, "#bucket-fill rect.fill")
    assert any(float(bar["percent"]) > 0 for bar in fill)  # the charts came with it
    assert not [text for text in blocked if "Content Security Policy" in text]


def test_the_api_is_browsable_in_swagger_ui(stack: LocalStack, browser_page: Page) -> None:
    """Issue 23, part 5: /docs draws every documented operation, with no token and
    nothing fetched from outside the stack."""
    outside: list[str] = []
    browser_page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith((stack.api_url, "data:"))
            else None
        ),
    )
    browser_page.goto(f"{stack.api_url}/docs")
    browser_page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    drawn = {
        (method.lower(), path)
        for method, path in browser_page.eval_on_selector_all(
            ".opblock-summary",
            """els => els.map(e => [
                e.querySelector('.opblock-summary-method').textContent,
                e.querySelector('.opblock-summary-path').dataset.path])""",
        )
    }
    document = ApiClient(stack.api_url, None).get("/openapi.json")
    documented = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert drawn == documented
    assert ("post", "/imports") in drawn
    assert outside == []
