"""Links a mail scanner cannot fire: every link of a real emailed digest fetched with HEAD and
GET, as corporate link scanners do, against the preview served by real uvicorn on 127.0.0.1,
changes nothing; the POST forms behind them do, and only from our own pages or from no page
(RFC 8058 one-click). Plus List-Unsubscribe as a mail client parses it, and `check` on a
deployment whose links cannot reach readers."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import httpx
import pytest
import time_machine
from test_render import NORMAL, NOW, write_project
from test_send import run, smtp_project

LINK = re.compile(r'href="([^"]+)"')


@pytest.fixture
def emailed(project, monkeypatch):
    """One digest of ada's emailed to the outbox: (config, message, every link in it)."""
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, NORMAL)
    (result,), _ = run(project, config)
    assert result.state == "sent"
    msg = message_from_bytes((project.root / "outbox" / "2026-11-22" / "ada.eml").read_bytes(),
                             policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    links = set(LINK.findall(html)) | set(re.findall(r"https?://\S+", text))
    links |= set(re.findall(r"<([^>]+)>", msg["List-Unsubscribe"]))
    ours = sorted(u.replace("&amp;", "&") for u in links if u.startswith(config.digest.base_url))
    return config, msg, ours


def set_base_url(project, url: str) -> None:
    text = project.path.read_text()
    assert 'base_url = "https://digest.example.org"' in text
    project.path.write_text(text.replace('base_url = "https://digest.example.org"', f'base_url = "{url}"'))


def state(project):
    with project.store() as s:
        return s.votes("ada"), s.reader_state("ada").unsubscribed_at


def test_a_scanner_fetching_every_link_changes_nothing(project, live_preview, emailed):
    config, _, links = emailed
    kinds = {u.split("/")[3] for u in links}
    assert {"feedback", "unsubscribe", "digest"} <= kinds, links
    base = live_preview(project, now=lambda: NOW)
    with httpx.Client(timeout=10) as http:
        for url in links:
            local = base + url.removeprefix(config.digest.base_url)
            for method in ("HEAD", "GET"):
                r = http.request(method, local)
                assert r.status_code == 200, (method, url, r.status_code)
    assert state(project) == ({}, "")


def test_links_with_mangled_signatures_are_refused_never_a_server_error(project, live_preview,
                                                                        emailed):
    """A seeded fuzz (bounded: 300 requests) of the emailed links: each signature replaced by
    a mangled one (non-ASCII, percent-encoded bytes, cut, lengthened), some path segments
    too, sent as a scanner or a one-click POST would. Non-ASCII signatures raised in
    compare_digest: a 500 for any stranger. Every request is refused, and nothing changes."""
    import random

    config, _, links = emailed
    base = live_preview(project, now=lambda: NOW)
    rnd = random.Random(20261206)
    junk = ["\u202e", "\U0001f642", "%ff", "%00", "%e2%80%ae", "\u00e9", "=", "&", "..", "a" * 300]
    with httpx.Client(timeout=10) as http:
        for _ in range(300):
            url = rnd.choice(links).removeprefix(config.digest.base_url)
            path, _, sig = url.partition("s=")
            at = rnd.randrange(len(sig))  # at least one character of it replaced
            bad = sig[:at] + rnd.choice(junk) + sig[at + rnd.randint(1, 3):]
            if rnd.random() < 0.3:  # a path segment mangled too
                parts = path.split("/")
                k = rnd.randrange(1, len(parts))
                parts[k] = parts[k] + rnd.choice(junk)
                path = "/".join(parts)
            method = rnd.choice(["GET", "HEAD", "POST"])
            r = http.request(method, base + path + "s=" + bad,
                             data={"List-Unsubscribe": "One-Click"} if method == "POST" else None)
            assert r.status_code < 500, (method, path + "s=" + bad, r.status_code)
    assert state(project) == ({}, "")


def test_the_forms_behind_the_links_do_what_they_say(project, live_preview, emailed):
    config, msg, links = emailed
    base = live_preview(project, now=lambda: NOW)
    up = next(u for u in links if "/feedback/" in u and u.split("?")[0].endswith("/up"))
    entry_id = up.split("/")[-2]
    url = base + up.removeprefix(config.digest.base_url)
    with httpx.Client(timeout=10, headers={"Origin": base}) as http:
        page = http.get(url)
        assert '<form method="post">' in page.text and "More like this" in page.text
        voted = http.post(url, data={"do": "vote"})
        assert voted.status_code == 200 and "Noted: more like this" in voted.text
        assert state(project)[0] == {entry_id: 1}
        again = http.get(url)  # the page says it is recorded, and offers undo
        assert "Already noted: more like this" in again.text and 'value="undo"' in again.text
        undone = http.post(url, data={"do": "undo"})
        assert "Undone" in undone.text and state(project)[0] == {}
        unsub = base + msg["List-Unsubscribe"].split("<")[1].split(">")[0].removeprefix(
            config.digest.base_url)
        gone = http.post(unsub, data={"List-Unsubscribe": "One-Click"})
        assert gone.status_code == 200 and state(project)[1]
        form = re.search(r'action="([^"]+)"', gone.text).group(1).replace("&amp;", "&")
        back = http.post(base + form)
        assert back.status_code == 200 and "gets the digest again" in back.text
    assert state(project)[1] == ""


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"}, {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
])
def test_a_foreign_page_cannot_post_the_forms(project, live_preview, emailed, headers):
    config, msg, links = emailed
    base = live_preview(project, now=lambda: NOW)
    up = next(u for u in links if "/feedback/" in u)
    unsub = msg["List-Unsubscribe"].split("<")[1].split(">")[0]
    with httpx.Client(timeout=10, headers=headers) as http:
        for url, body in ((up, "do=vote"), (unsub, "List-Unsubscribe=One-Click")):
            r = http.post(base + url.removeprefix(config.digest.base_url), content=body,
                          headers={"Content-Type": "text/plain"})
            assert r.status_code == 403, url
    assert state(project) == ({}, "")


def test_one_click_from_a_mail_provider_needs_no_page(project, live_preview, emailed):
    """RFC 8058: the provider's server POSTs with no Origin, cookie or page."""
    config, msg, _ = emailed
    base = live_preview(project, now=lambda: NOW)
    unsub = msg["List-Unsubscribe"].split("<")[1].split(">")[0]
    r = httpx.post(base + unsub.removeprefix(config.digest.base_url),
                   data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert r.status_code == 200 and state(project)[1]
    with time_machine.travel(NOW, tick=False):
        (later,), _ = run(project, config)
    assert later.state == "skipped" and later.detail == "unsubscribed"
    cli = project.run("readers", "resubscribe", "ada")
    assert cli.exit_code == 0 and "ada is subscribed again" in cli.output
    assert state(project)[1] == ""
    assert "was not unsubscribed" in project.run("readers", "resubscribe", "ada").output


def test_list_unsubscribe_is_a_plain_uri_however_long(project):
    """A long https base_url: the header stays URIs in angle brackets (RFC 2369), folded
    between them, never RFC 2047-encoded; one-click only for https."""
    long_base = "https://digest.example.org/" + "a-rather-long-path-prefix/" * 4 + "digest"
    port_free_smtp = ('[smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\n'
                      'from = "Papers <digest@example.org>"\nunsubscribe_mailto = "leave@example.org"\n')
    write_project(project, NORMAL)
    set_base_url(project, long_base)
    project.path.write_text(project.path.read_text().replace("[ranking]", port_free_smtp + "[ranking]"))
    with time_machine.travel(NOW, tick=False):
        eml = project.run("render", "ada", "--format", "eml").stdout_bytes
    head = eml.split(b"\r\n\r\n")[0].decode("ascii")
    raw = re.search(r"^List-Unsubscribe:(.*?)\r\n(?=\S)", head + "\r\nX", re.M | re.S).group(1)
    assert "=?" not in raw and all(len(line) <= 998 for line in raw.split("\r\n"))
    uris = re.findall(r"<([^<>]+)>", re.sub(r"\r\n[ \t]+", " ", raw))  # unfold, then parse
    assert uris[0].startswith(long_base + "/unsubscribe/ada?s=")
    assert uris[1] == "mailto:leave@example.org?subject=unsubscribe%20ada"
    assert "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
    project.path.write_text(project.path.read_text().replace(long_base, "http://digest.example.org"))
    with time_machine.travel(NOW, tick=False):
        plain = project.run("render", "ada", "--format", "eml").stdout_bytes.split(b"\r\n\r\n")[0]
    assert b"List-Unsubscribe: <http://digest.example.org/unsubscribe/ada?s=" in plain
    assert b"List-Unsubscribe-Post" not in plain  # RFC 8058 one-click is for https only


@pytest.mark.parametrize(("base_url", "warned"), [
    ("http://127.0.0.1:8750", "loopback"), ("http://localhost:8750", "loopback"),
    ("http://192.168.1.20:8750", "a private address"), ("http://digest.example.org", "plain http"),
    ("https://digest.example.org", None),
])
def test_check_knows_a_deployment(project, smtp_server, base_url, warned):
    smtp_project(project, smtp_server.port)
    set_base_url(project, base_url)
    check = project.run("check")
    assert check.exit_code == 0
    if warned:
        assert f"[digest] base_url is {base_url}, {warned}" in check.output
        with time_machine.travel(NOW, tick=False):
            send = project.run("send", "--dry-run")
        assert send.output.count("[digest] base_url is") == 1
    else:
        assert "base_url is" not in check.output
    outbox_only = project.path.read_text().split("[smtp]")[0] + "[ranking]" + \
        project.path.read_text().split("[ranking]", 1)[1]
    project.path.write_text(outbox_only)
    assert "base_url is" not in project.run("check").output  # the outbox never mails a link
