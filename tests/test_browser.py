"""The digest in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): phone
and desktop widths, no sideways scrolling, real links, and the preview's navigation.

.ci/run installs chromium with apt-get; without the binary these tests are skipped with the
reason printed (playwright's own browser download is never used: it would need the network)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from test_render import NORMAL, NOW, entry, rendered, write_project

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


def email_page(browser, html, width=375, scheme="light"):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.set_content(html)
    return page


def test_without_its_style_block_the_email_keeps_its_spacing_and_separators(project, browser):
    """Gmail's apps (for non-Google accounts) and many webmails drop <style>: the inlined
    styles must carry the layout, and words must not run together."""
    _, done = rendered(project, NORMAL)
    bare = re.sub(r"<style\b.*?</style>", "", done.html, flags=re.S)
    assert "<style" not in bare and not re.search(r"</(a|span)><(a|span)\b", bare)
    page = email_page(browser, bare)
    info = page.evaluate("""() => {
        const gaps = [];
        for (const box of document.querySelectorAll('.votes, .foot')) {
            const kids = Array.from(box.querySelectorAll('a'));
            for (let i = 1; i < kids.length; i++) {
                const a = kids[i - 1].getBoundingClientRect(), b = kids[i].getBoundingClientRect();
                if (Math.abs(a.top - b.top) < 2) gaps.push(b.left - a.right);
            }
        }
        const cs = s => getComputedStyle(document.querySelector(s));
        return {gaps, text: document.body.innerText, metaPad: cs('td.meta').paddingTop,
                rule: cs('td.votes').borderBottomWidth, button: cs('a.button').paddingTop,
                scroll: document.scrollingElement.scrollWidth, width: window.innerWidth};
    }""")
    assert info["gaps"] and min(info["gaps"]) >= 3, info["gaps"]
    text = info["text"]
    assert "arXiv · cs.LG · 2026-11-22" in text and "Lab notes · 2026-11-22" in text
    assert re.search(r"More like this\s+👎 Less like this", text)
    assert re.search(r"View in browser · As a feed · Your votes and mutes · Unsubscribe", text)
    assert (info["metaPad"], info["rule"], info["button"]) == ("14px", "1px", "6px")
    assert info["scroll"] <= info["width"]


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_reasons_and_authors_keep_their_colours_in_both_schemes(project, browser, scheme):
    _, done = rendered(project, NORMAL)
    assert '<meta name="color-scheme" content="light dark">' in done.html
    page = email_page(browser, done.html, scheme=scheme)
    colours = page.evaluate("""() => {
        const background = el => {
            for (; el; el = el.parentElement) {
                const c = getComputedStyle(el).backgroundColor;
                if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
            }
            return 'rgb(255, 255, 255)';
        };
        const out = {};
        for (const k of ['why', 'authors', 'snippet', 'meta']) {
            const el = document.querySelector('td.' + k);
            out[k] = [getComputedStyle(el).color, background(el)];
        }
        return out;
    }""")
    body = colours["snippet"][0]
    assert colours["why"][0] != body and colours["authors"][0] != body  # not turned body-coloured
    for name, (fg, bg) in colours.items():
        assert _contrast(fg, bg) >= 4.5, (scheme, name, fg, bg)
    dark_background = _luminance(colours["why"][1]) < 0.05
    assert dark_background == (scheme == "dark")


def test_buttons_and_footer_links_are_big_enough_to_tap_on_a_phone(project, browser):
    _, done = rendered(project, NORMAL)
    page = email_page(browser, done.html, width=375)
    sizes = page.evaluate("""() => Array.from(document.querySelectorAll('a.button, a.artifact, .foot a')).map(a => {
        const r = a.getBoundingClientRect(); return [a.innerText, r.width, r.height]; })""")
    assert len(sizes) == 2 * 4 + 1 + 4  # votes, a code link, the footer's links
    for label, w, h in sizes:
        assert w >= 24 and h >= 24, (label, w, h)
