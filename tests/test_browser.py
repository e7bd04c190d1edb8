"""The digest in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): phone
and desktop widths, no sideways scrolling, real links, and the preview's navigation.

.ci/run installs chromium with apt-get; without the binary these tests are skipped with the
reason printed (playwright's own browser download is never used: it would need the network)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_render import NORMAL, NOW, entry, write_project

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# CI sets DIGEST_REQUIRE_BROWSER so that a missing browser fails rather than skips.
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("DIGEST_REQUIRE_BROWSER"),
                                reason="needs Debian's chromium: apt-get install chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def open_digest(browser, url, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    response = page.goto(url)
    assert response.status == 200
    return page


def layout(page) -> dict:
    return page.evaluate("""() => ({
        scrollWidth: document.scrollingElement.scrollWidth,
        innerWidth: window.innerWidth,
        hrefs: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href')),
        votes: document.querySelectorAll('a[href*="/feedback/"]').length,
        items: document.querySelectorAll('.item').length,
        widest: Math.max(...Array.from(document.querySelectorAll('.item')).map(e => e.getBoundingClientRect().right)),
    })""")


@pytest.mark.parametrize("width", [375, 800])
def test_digest_fits_the_screen_with_real_links(project, live_preview, browser, tmp_path, width):
    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    page = open_digest(browser, base + "/digest/ada/2026-11-22", width)
    shot = tmp_path / f"digest-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    info = layout(page)
    assert info["scrollWidth"] <= info["innerWidth"], info  # no sideways scrolling
    assert info["items"] == 4 and info["votes"] == 2 * info["items"]
    assert info["hrefs"] and all(h and h.startswith(("http://", "https://")) for h in info["hrefs"])
    if width == 800:  # 600 px on a desktop, centred
        assert 590 <= page.evaluate("document.querySelector('.item').getBoundingClientRect().width") + 32 <= 610
    else:  # fluid on a phone
        assert info["widest"] <= 375


def test_hostile_content_stays_inside_a_phone_screen(project, live_preview, browser):
    write_project(project, [
        ("arxiv", entry("long", "Style transfer " + "Supercalifragilistic" * 60, "x" * 3000)),
        ("arxiv", entry("url", "Style transfer https://example.org/" + "a" * 400, "")),
        ("arxiv", entry("rtl", "نقل النمط style transfer 🎨", "ملخص", authors=[])),
    ])
    base = live_preview(project, now=lambda: NOW)
    page = open_digest(browser, base + "/digest/ada/2026-11-22", 375)
    info = layout(page)
    assert info["items"] == 3 and info["scrollWidth"] <= info["innerWidth"], info


def test_preview_index_navigates_to_a_digest(project, live_preview, browser):
    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    page = open_digest(browser, base + "/", 800)
    page.click("a.digest-link >> nth=0")
    page.wait_for_load_state()
    assert page.url == base + "/digest/ada/2026-11-22"
    assert "Sparse attention for long documents" in page.inner_text("body")
    assert page.locator("a[href*='/feedback/']").count() == 8


def test_a_person_clicks_the_vote_and_unsubscribe_buttons(project, live_preview, browser, monkeypatch):
    """The link opens a page; its button POSTs from our own origin (Referrer-Policy
    same-origin lets the browser say so) and records the vote; undo and unsubscribe too."""
    import re

    from test_send import run

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, NORMAL)
    run(project, config)
    from email import message_from_bytes, policy

    msg = message_from_bytes((project.root / "outbox" / "2026-11-22" / "ada.eml").read_bytes(),
                             policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    base = live_preview(project, now=lambda: NOW)
    up = re.search(r'href="([^"]+/feedback/ada/[0-9a-f]+/up\?s=[0-9a-f]+)"', html)
    assert up, "no 👍 link in the email"
    url = base + up.group(1).removeprefix(config.digest.base_url)
    page = browser.new_page()
    assert page.goto(url).status == 200
    with project.store() as s:
        assert s.votes("ada") == {}  # opening the link changed nothing
    page.click("button")
    assert "Noted: more like this" in page.content()
    with project.store() as s:
        assert list(s.votes("ada").values()) == [1]
    page.click("button")  # Undo
    assert "Undone" in page.content()
    with project.store() as s:
        assert s.votes("ada") == {}
