"""Chat and push delivery through Apprise, for real: its json:// target posting to a loopback
HTTP server. Exactly once per reader, channel and date across runs; a failing channel is
retried and never holds up email; secrets come from the environment."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from test_render import NORMAL, NOW, write_project

pytest.importorskip("apprise")

from digest.notify import markdown


def notify_project(project, httpserver, *, email=True, extra=""):
    write_project(project, NORMAL)
    url = f"json://127.0.0.1:{httpserver.port}/hook"
    text = project.path.read_text().replace(
        '[users.ada.interests]', f'notify = ["{url}"]\n{extra}[users.ada.interests]')
    if not email:
        text = text.replace('email = "ada@example.org"\n', "")
    project.path.write_text(text)
    return project.config()


def send(project, *args):
    with time_machine.travel(NOW, tick=False):
        return project.run("send", *args)


def posts(httpserver):
    return [json.loads(req.get_data()) for req, _ in httpserver.log if req.path == "/hook"]


def test_two_runs_post_once_beside_the_email(project, httpserver, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    notify_project(project, httpserver)
    first = send(project)
    assert first.exit_code == 0, first.output
    assert "ada 2026-11-22: sent to notify:json:" in first.output
    second = send(project)
    assert second.exit_code == 0, second.output
    (body,) = posts(httpserver)
    assert body["title"] == "Morning papers · Sunday, 22 November 2026"
    message = body["message"]
    assert "[Sparse attention for long documents](https://papers.example.org/sa)" in message
    assert 'Why: matches "sparse attention" in the title' in message
    assert "[View in browser](https://digest.example.org/digest/ada/2026-11-22?s=" in message
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 1  # and the email, once


def test_a_failing_channel_is_retried_and_never_holds_up_the_email(project, httpserver, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    monkeypatch.setattr("digest.notify.RETRY_WAIT", 0.0)
    httpserver.expect_request("/hook", method="POST").respond_with_data("down", status=503)
    notify_project(project, httpserver)
    first = send(project)
    assert first.exit_code == 1, first.output  # a failure is never silent...
    assert "ada 2026-11-22: sent to the outbox" in first.output  # ...and the email went out
    assert "ada 2026-11-22: FAILED, 3 items (notify:json:" in first.output
    assert "error=503" in first.output
    assert len(posts(httpserver)) == 3  # three attempts
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 1
    with project.store() as s:
        (row,) = [r for r in s.deliveries("ada") if r.channel.startswith("notify:")]
        assert row.state == "failed" and "gave up after 3 attempts" in row.detail
    httpserver.clear()
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    again = send(project)
    assert "sent to notify:json:" in again.output and len(posts(httpserver)) == 1
    send(project)
    assert len(posts(httpserver)) == 1  # settled: never twice


def test_a_reader_with_channels_only_and_a_url_from_the_environment(project, httpserver, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace('email = "ada@example.org"\n', "").replace(
        '[users.ada.interests]', 'notify_env = ["ADA_CHAT"]\n[users.ada.interests]'))
    check = project.run("check")
    assert "notify_env names ADA_CHAT, which is not set" in check.output
    monkeypatch.setenv("ADA_CHAT", f"json://127.0.0.1:{httpserver.port}/hook")
    r = send(project)
    assert r.exit_code == 0, r.output
    assert len(posts(httpserver)) == 1
    assert not (project.root / "outbox").exists() or not list((project.root / "outbox").rglob("*.eml"))
    assert "ADA_CHAT" not in project.run("check").output


def test_check_names_an_inline_token_without_printing_it(project, httpserver):
    write_project(project, NORMAL)
    token = "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    project.path.write_text(project.path.read_text().replace(
        '[users.ada.interests]', f'notify = ["slack://{token}"]\n[users.ada.interests]'))
    r = project.run("check")
    assert "notify has a slack:// URL that looks like it holds a token" in r.output
    assert token not in r.output


def test_the_scheduler_pushes_once_across_ticks(project, httpserver, monkeypatch):
    from digest.schedule import send_tick

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    config = notify_project(project, httpserver, email=False)
    for minutes in (0, 1, 2):
        when = NOW + timedelta(minutes=minutes)
        with time_machine.travel(when, tick=False):
            send_tick(config, when)
    assert len(posts(httpserver)) == 1


def test_a_long_digest_is_cut_to_the_services_limit_with_a_link_to_the_rest(project):
    from test_render import rendered

    _, done = rendered(project, NORMAL)
    full = markdown(done.view, 20_000)
    short = markdown(done.view, 600)
    assert len(short) <= 600 < len(full)
    assert "more in the browser: [https://digest.example.org/digest/ada/2026-11-22?s=" in short
    assert short.rstrip().endswith(")") and "[Unsubscribe](" in short


def test_a_failing_channel_shows_on_the_health_page(project, httpserver, monkeypatch, live_preview):
    import httpx

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    monkeypatch.setattr("digest.notify.RETRY_WAIT", 0.0)
    httpserver.expect_request("/hook", method="POST").respond_with_data("down", status=503)
    notify_project(project, httpserver)
    send(project)
    base = live_preview(project, now=lambda: NOW)
    page = httpx.get(base + "/health").text
    assert "Chat channels failing" in page and "notify:json:" in page and "error=503" in page


def test_one_failing_channel_never_holds_up_another(project, httpserver, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    monkeypatch.setattr("digest.notify.RETRY_WAIT", 0.0)
    httpserver.expect_request("/down", method="POST").respond_with_data("no", status=500)
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    notify_project(project, httpserver)
    project.path.write_text(project.path.read_text().replace(
        "notify = [", f'notify = ["json://127.0.0.1:{httpserver.port}/down", '))
    r = send(project)
    assert r.exit_code == 1 and "sent to notify:json:" in r.output and "FAILED" in r.output
    assert len(posts(httpserver)) == 1  # the working channel got it, once
    assert len([1 for req, _ in httpserver.log if req.path == "/down"]) == 3


@pytest.mark.parametrize("limit", [400, 700, 1000, 1500, 4096])
def test_every_cut_fits_and_counts_what_it_left_out(project, limit):
    import re

    from test_render import LONG, rendered

    _, done = rendered(project, LONG)
    total = sum(len(s.items) for s in done.view.sections)
    text = markdown(done.view, limit)
    assert len(text) <= limit
    shown = len(re.findall(r"^\d+\. ", text, re.M))
    more = re.search(r"^(\d+) more in the browser", text, re.M)
    assert shown + (int(more.group(1)) if more else 0) == total, text


def test_check_names_a_url_apprise_cannot_read(project):
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace(
        '[users.ada.interests]', 'notify = ["nosuchservice://somewhere"]\n[users.ada.interests]'))
    r = project.run("check")
    assert "notify has a nosuchservice:// URL that Apprise cannot read" in r.output


def test_a_chat_message_cut_off_by_a_dead_run_is_unconfirmed_never_sent_twice(project, httpserver, monkeypatch):
    """A run that died after marking the channel 'sending' may have delivered it: the next run
    says so (unconfirmed) and does not post again."""
    from digest.notify import channels

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    config = notify_project(project, httpserver)
    (channel,) = channels(config.users["ada"])
    gone = NOW - timedelta(hours=1)
    with project.store() as s:
        assert s.claim_deliveries([("ada", "2026-11-22")], "elsewhere:1:dead", gone, channel=channel.name)
        assert s.advance("ada", "2026-11-22", "elsewhere:1:dead", "sending", gone, channel=channel.name)
    send(project)
    assert posts(httpserver) == []
    with project.store() as s:
        row = s.delivery("ada", "2026-11-22", channel.name)
        assert row.state == "unconfirmed" and "may have arrived" in row.detail


def test_without_apprise_a_channel_fails_in_one_sentence_and_email_goes_out(project, httpserver, monkeypatch):
    import sys

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if the notify extra were not installed
    notify_project(project, httpserver)
    r = send(project)
    assert "Traceback" not in r.output and r.exit_code == 1
    assert "sent to the outbox" in r.output
    assert "Apprise is not installed; pip install 'digest[notify]'" in r.output
    assert "Apprise is not installed" in project.run("check").output


def test_two_processes_at_once_post_once(project, httpserver, monkeypatch):
    """Two `digest send` processes started together against a slow chat server: the ledger
    claim gives the channel to one of them."""
    import subprocess
    import sys
    import time

    from werkzeug import Response

    def slow(request):
        time.sleep(0.5)  # both runs are inside the send when the first post lands
        return Response("ok")

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    httpserver.expect_request("/hook", method="POST").respond_with_handler(slow)
    notify_project(project, httpserver)
    cmd = [sys.executable, "-m", "digest", "--config", str(project.path), "send", "--date", "2026-11-22"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all("Traceback" not in o for o in outs), outs
    assert len(posts(httpserver)) == 1, outs
    assert sum("sent to notify:json:" in o for o in outs) == 1, outs
