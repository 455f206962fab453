"""The gallery in a real browser (issue 23, part 3): headless Chromium opens /gallery
on the local stack signed in by the link's fragment, photos dropped on the page go
straight to the upload bucket with a progress bar and come back as thumbnails (sized
variants), and the page publishes, downloads and deletes them, under its strict
Content-Security-Policy. The screenshot is saved under the test's output (and to
``$SHELFLIFE_GALLERY_SCREENSHOT`` when set: that is how docs/gallery.png is made)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page

from shelflife_tools.client import ApiClient
from shelflife_tools.local.stack import LocalStack
from tests.integration.test_dashboard_browser import browser_page, stack
from tests.support.corpus import CORPUS

pytestmark = pytest.mark.browser
__all__ = ["browser_page", "stack"]  # fixtures, shared with the dashboard's tests

DROPPED = [
    CORPUS / "photos" / "flowers.jpeg",
    CORPUS / "photos" / "2569067123_aca715a2ee_o.jpg",
    CORPUS / "camera" / "jolla.jpg",
    CORPUS / "broken" / "truncated.jpg",
]


def drop(page: Page, files: list[Path]) -> None:
    """Drop ``files`` on the page's drop zone, as a user dragging them from a folder
    does (a DataTransfer holding File objects)."""
    payload = [[f.name, base64.b64encode(f.read_bytes()).decode()] for f in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, encoded] of files) {
                const text = atob(encoded);
                const bytes = new Uint8Array(text.length);
                for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
                transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
            }
            return transfer;
        }""",
        payload,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


@pytest.fixture
def console(browser_page: Page) -> list[str]:
    said: list[str] = []
    browser_page.on("console", lambda message: said.append(message.text))
    return said


def test_a_user_uploads_sees_publishes_and_deletes_photos_in_the_gallery(
    stack: LocalStack, browser_page: Page, console: list[str], tmp_path: Path
) -> None:
    page = browser_page
    client = ApiClient(stack.api_url, stack.token("alice"))
    assert page.goto(f"{stack.api_url}/gallery") is not None
    page.wait_for_selector("#signin:not([hidden])")  # no token yet: asked for one

    page.goto("about:blank")  # the link is another document, not a fragment change
    page.goto(stack.gallery_link("alice"))
    page.wait_for_selector("body[data-ready='true']", timeout=30_000)
    assert "access_token" not in page.url, "the token left the address bar"
    assert page.get_attribute("#grid", "data-count") == "0"

    drop(page, DROPPED)
    for path in DROPPED:
        page.wait_for_selector(
            f"#uploads li[data-file='{path.name}']:not([data-state='sending'])"
            ":not([data-state='processing'])",
            timeout=90_000,
        )
    outcomes = dict(
        page.eval_on_selector_all(
            "#uploads li", "rows => rows.map(r => [r.dataset.file, r.dataset.state])"
        )
    )
    assert outcomes == {
        "flowers.jpeg": "stored",
        "2569067123_aca715a2ee_o.jpg": "stored",
        "jolla.jpg": "stored",
        "truncated.jpg": "rejected",
    }
    bars = page.eval_on_selector_all("#uploads progress", "bars => bars.map(b => b.value)")
    assert bars == [100, 100, 100, 100], "each file's bar reached its end"
    assert "truncated or corrupt" in (page.text_content("#uploads li[data-state='rejected']") or "")

    # The grid: the three photos (and the rejected upload's record), each stored one
    # with a thumbnail that loaded from the store: a 320 px square variant.
    page.wait_for_selector("#grid[data-count='4']", timeout=30_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll("#grid li[data-state='active'] img")]
            .every(img => img.complete && img.naturalWidth > 0)""",
        timeout=30_000,
    )
    sizes = page.eval_on_selector_all(
        "#grid li[data-state='active'] img",
        "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight, i.dataset.variant])",
    )
    assert len(sizes) == 3
    assert all(width == height == 320 for width, height, _ in sizes), sizes
    assert all(name.startswith("320x320-cover.") for _, _, name in sizes)
    photos = {p["filename"]: p for p in client.get("/photos")["items"]}
    assert {v for p in photos.values() for v in p["variants"]} == {sizes[0][2]}
    assert page.get_attribute("#usage", "data-photos") == "3"
    usage = client.get("/users/me/usage")
    assert page.get_attribute("#usage", "data-bytes") == str(usage["bytes"])

    flowers = photos["flowers.jpeg"]["id"]
    card = f"#grid li[data-id='{flowers}']"
    page.click(f"{card} button[data-action='publish']")
    page.wait_for_selector(f"{card}[data-published='true']", timeout=30_000)
    assert client.get(f"/photos/{flowers}")["published_at"] is not None

    with page.expect_popup() as opened:
        page.click(f"{card} button[data-action='download']")
    download = opened.value
    download.wait_for_load_state()
    assert download.url.split("?")[0].endswith(".jpg")
    download.close()

    shot = tmp_path / "gallery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("SHELFLIFE_GALLERY_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["SHELFLIFE_GALLERY_SCREENSHOT"])

    jolla = photos["jolla.jpg"]["id"]
    page.click(f"#grid li[data-id='{jolla}'] button[data-action='delete']")
    assert page.get_attribute(f"#grid li[data-id='{jolla}']", "data-state") == "active"
    page.click(f"#grid li[data-id='{jolla}'] button[data-action='delete']")  # confirmed
    page.wait_for_selector(f"#grid li[data-id='{jolla}']", state="detached", timeout=30_000)
    assert jolla not in {p["id"] for p in client.get("/photos")["items"]}
    page.wait_for_selector("#usage[data-photos='2']")

    assert not [text for text in console if "Content Security Policy" in text], console
