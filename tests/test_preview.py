"""`digest preview` over real HTTP on 127.0.0.1: pages, headers, Host check, signed links from
elsewhere, and reloading when the config or a template changes."""

from __future__ import annotations

import httpx
from starlette.testclient import TestClient
from test_render import NORMAL, NOW, write_project

from digest.links import Links
from digest.preview import CSP, create_app


def get(url, **kw):
    return httpx.get(url, timeout=30, **kw)


def assert_secure(r):
    assert r.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_index_digest_text_and_health(project, live_preview, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    index = get(base + "/")
    assert index.status_code == 200 and "Morning papers" in index.text
    assert 'href="/digest/ada/2026-11-22"' in index.text and 'href="/digest/ada/2026-11-16"' in index.text
    html = get(base + "/digest/ada/2026-11-22")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Sparse attention for long documents" in html.text and "/feedback/ada/" in html.text
    text = get(base + "/digest/ada/2026-11-22.txt")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text.startswith("Morning papers · Sunday, 22 November 2026 · for ada")
    health = get(base + "/health")
    assert health.status_code == 200 and "Lab notes" in health.text and '<td class="new">new</td>' in health.text
    for r in (index, html, text, health):
        assert_secure(r)


def test_refuses_foreign_host_and_unknown_pages(project, live_preview):
    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    foreign = get(base + "/", headers={"Host": "attacker.example"})
    assert foreign.status_code == 400
    assert_secure(foreign)
    assert get(base + "/", headers={"Host": "localhost:1234"}).status_code == 200
    missing = get(base + "/digest/nobody/2026-11-22")
    assert missing.status_code == 404 and "There is no such digest here." in missing.text
    assert_secure(missing)
    bad_date = get(base + "/digest/ada/yesterday")
    assert bad_date.status_code == 400 and "is not a date" in bad_date.text


def test_from_elsewhere_only_a_signed_link_opens_a_digest(project, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, NORMAL)
    # TestClient's requests come from "testclient", not loopback; its Host is "testserver".
    client = TestClient(create_app(project.path, host="testserver", now=lambda: NOW))
    private = client.get("/digest/ada/2026-11-22")
    assert private.status_code == 403 and "only shown on the server itself" in private.text
    signed = Links(config.digest.base_url, b"test-secret").view("ada", "2026-11-22")
    path = signed.removeprefix(config.digest.base_url)
    assert client.get(path).status_code == 200
    assert client.get(path.replace("2026-11-22", "2026-11-21")).status_code == 403  # other day


def test_reloads_when_config_or_templates_change(project, live_preview):
    (project.root / "tpl").mkdir()
    write_project(project, NORMAL, extra='templates = "tpl"')
    (project.root / "tpl" / "digest.txt").write_text("first {{ v.reader }}\n")
    base = live_preview(project, now=lambda: NOW)
    assert get(base + "/digest/ada/2026-11-22.txt").text == "first ada\n"
    (project.root / "tpl" / "digest.txt").write_text("second version {{ v.reader }}\n")
    assert get(base + "/digest/ada/2026-11-22.txt").text == "second version ada\n"
    project.path.write_text(project.path.read_text().replace("Morning papers", "Evening papers"))
    assert "Evening papers" in get(base + "/").text
    project.path.write_text(project.path.read_text() + "\n[bogus]\n")
    broken = get(base + "/")
    assert broken.status_code == 500 and "[bogus]" in broken.text and "Traceback" not in broken.text


def test_page_titles_are_plain_text(project, live_preview):
    """Every page's <title> is a short plain text (a block that leaks markup breaks tabs)."""
    import re

    write_project(project, NORMAL)
    base = live_preview(project, now=lambda: NOW)
    for path in ("/", "/health", "/archive", "/digest/nobody/2026-11-22"):
        title = re.search(r"<title>(.*?)</title>", get(base + path).text, re.S).group(1)
        assert "<" not in title and len(title) < 80, (path, title)


def test_a_busy_port_is_a_one_sentence_error(project):
    import socket

    write_project(project, NORMAL)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = project.run("preview", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "pass --port" in result.output
