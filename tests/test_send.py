"""Delivery through a real SMTP server on 127.0.0.1 (aiosmtpd) and the outbox: message structure,
exactly once per reader and date, retries, permanent refusals, crash recovery, empty days."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
import time_machine
from aiosmtpd.controller import Controller
from conftest import Recorder, free_port
from test_render import NORMAL, NOW, write_project

from digest.deliver import Outbox, Smtp, backend_for
from digest.ledger import LEASE
from digest.send import send_digests


def smtp_section(port: int) -> str:
    return (f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'from = "Morning papers <digest@example.org>"\nretries = 3\nretry_wait = "10s"\n')


def smtp_project(project, port, entries=NORMAL, extra=""):
    write_project(project, entries, extra)
    project.path.write_text(project.path.read_text().replace("[ranking]", smtp_section(port) + "[ranking]"))
    return project.config()


def run(project, config, sleep=None, backend=None, **kw):
    waits = []
    with project.store() as s, time_machine.travel(NOW, tick=False):
        results = send_digests(config, s, list(config.users.values()), None, NOW,
                               backend or backend_for(config), sleep=sleep or waits.append, **kw)
    return results, waits


def test_smtp_message_structure_and_exactly_once(project, smtp_server):
    config = smtp_project(project, smtp_server.port)
    (first,), _ = run(project, config)
    assert first.state == "sent" and first.items == 3
    (msg_bytes,) = smtp_server.messages
    msg = message_from_bytes(msg_bytes, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["From"] == "Morning papers <digest@example.org>" and msg["To"] == "ada <ada@example.org>"
    assert msg["Subject"] == "Sparse attention for long documents — and 3 more"
    assert msg["Message-ID"].endswith("@example.org>") and msg["Date"]
    assert msg["List-Id"] == "Morning papers <digest.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Sparse attention for long documents" in msg.get_body(("html",)).get_content()
    # A second run the same day sends nothing, and the CLI says so.
    with time_machine.travel(NOW, tick=False):
        again = project.run("send")
    assert again.exit_code == 0, again.output
    assert "ada 2026-11-22: already done for this date; nothing sent" in again.output
    assert "Nothing to send: every digest of this date went out already." in again.output
    assert len(smtp_server.messages) == 1
    with project.store() as s:
        row = s.delivery("ada", "2026-11-22")
    assert row.state == "sent" and row.message_id == msg["Message-ID"] and row.attempts == 1


def test_temporary_refusals_are_retried_with_backoff(project, smtp_server):
    smtp_server.replies = ["451 4.3.0 try again later", "451 4.3.0 still busy"]
    config = smtp_project(project, smtp_server.port)
    (result,), waits = run(project, config)
    assert result.state == "sent"
    assert len(smtp_server.messages) == 1
    assert waits == [10, 20]  # retry_wait, doubled
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").attempts == 3


def test_permanent_refusal_is_not_retried_and_marks_the_reader(project, smtp_server):
    smtp_server.replies = ["550 5.1.1 mailbox unavailable"]
    config = smtp_project(project, smtp_server.port)
    (result,), waits = run(project, config)
    assert result.state == "failed" and waits == [] and smtp_server.messages == []
    assert "refused the digest for ada <ada@example.org> for good (550 5.1.1 mailbox unavailable)" in result.detail
    with project.store() as s:
        assert s.reader_states()["ada"].failing_since
        assert s.delivery("ada", "2026-11-22").state == "failed"
    check = project.run("check")
    assert "reader ada is failing" in check.output and "550" in check.output
    assert "Reader ada is failing since" in project.run("feeds").output
    from starlette.testclient import TestClient

    from digest.preview import create_app

    health = TestClient(create_app(project.path), base_url="http://127.0.0.1",
                        client=("127.0.0.1", 50000)).get("/health")  # on the server itself
    assert "Readers whose mail is refused" in health.text and "550 5.1.1" in health.text
    with time_machine.travel(NOW, tick=False):  # a later run tries again; success clears it
        cli = project.run("send")
    assert cli.exit_code == 0 and len(smtp_server.messages) == 1
    with project.store() as s:
        assert s.reader_states()["ada"].failing_since == ""


def test_crash_between_sending_and_sent_never_sends_twice(project, smtp_server):
    config = smtp_project(project, smtp_server.port)

    class Crash(BaseException):
        pass

    class DiesAfterData(Smtp):
        def send(self, out, commit):
            super().send(out, commit)
            raise Crash  # the process dies after the server accepted, before 'sent'

    with pytest.raises(Crash):
        run(project, config, backend=DiesAfterData(config.smtp))
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").state == "sending"
    (result,), _ = run(project, config)  # a restart at once: the dead run's lease still holds
    assert result.state == "busy" and len(smtp_server.messages) == 1
    assert "holds it until" in result.detail
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").state == "sending"
    later = NOW + LEASE + timedelta(seconds=1)
    with project.store() as s, time_machine.travel(later, tick=False):  # the lease has lapsed
        (result,) = send_digests(config, s, [config.users["ada"]], date(2026, 11, 22), later,
                                 backend_for(config), sleep=lambda _: None)
        row = s.delivery("ada", "2026-11-22")
    assert result.state == "unconfirmed" and len(smtp_server.messages) == 1
    assert row.state == "unconfirmed" and "stopped while handing it to the SMTP server" in row.detail
    assert "--resend-unconfirmed" in result.detail
    with time_machine.travel(later, tick=False):
        check = project.run("check")  # reported, not silent
    assert "the digest of ada for 2026-11-22 is unconfirmed" in check.output
    assert "digest send ada --date 2026-11-22 --resend-unconfirmed" in check.output


def test_outbox_is_the_default_and_recovers_from_a_crash(project):
    config = write_project(project, NORMAL)
    assert isinstance(backend_for(config), Outbox)

    class Crash(BaseException):
        pass

    class DiesBeforeWriting(Outbox):
        def send(self, out, commit):
            assert commit()  # 'sending' is on disk; then the process dies
            raise Crash

    with pytest.raises(Crash):
        run(project, config, backend=DiesBeforeWriting(config.digest.outbox))
    later = NOW + timedelta(minutes=20)
    with project.store() as s, time_machine.travel(later, tick=False):  # the restart
        (result,) = send_digests(config, s, [config.users["ada"]], date(2026, 11, 22), later,
                                 backend_for(config), sleep=lambda _: None)
    assert result.state == "sent"  # nothing had been written, so the restart sends it
    eml = project.root / "outbox" / "2026-11-22" / "ada.eml"
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg.get_body(("plain",)).get_content().startswith("Morning papers · Sunday, 22 November 2026")
    assert list((project.root / "outbox").rglob("*.part")) == []


@pytest.mark.parametrize("mode", ["skip", "send"])
def test_empty_day(project, mode):
    config = write_project(project, [], extra=f'empty_day = "{mode}"')
    (result,), _ = run(project, config)
    eml = project.root / "outbox" / "2026-11-22" / "ada.eml"
    with project.store() as s:
        row = s.delivery("ada", "2026-11-22")
    if mode == "skip":
        assert result.state == "skipped" and not eml.exists() and row.state == "skipped"
    else:
        assert result.state == "sent" and eml.exists() and row.state == "sent"
        assert "Nothing new scored above your threshold today" in eml.read_text()


def test_send_dry_run_and_failures_exit_1(project, smtp_server):
    smtp_project(project, smtp_server.port)
    with time_machine.travel(NOW, tick=False):
        dry = project.run("send", "--dry-run")
    assert dry.exit_code == 0 and "ada 2026-11-22: would be sent, 3 items" in dry.output
    assert smtp_server.messages == []
    smtp_server.replies = ["554 5.7.1 rejected"]
    with time_machine.travel(NOW, tick=False):
        failed = project.run("send", "ada")
    assert failed.exit_code == 1
    assert "1 of 1 digests failed: ada" in failed.output and "Traceback" not in failed.output


def test_feedback_and_one_click_unsubscribe_endpoints(project, monkeypatch):
    import re

    from starlette.testclient import TestClient

    from digest.preview import create_app

    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    config = write_project(project, NORMAL)
    (result,), _ = run(project, config)
    assert result.state == "sent"
    eml = (project.root / "outbox" / "2026-11-22" / "ada.eml").read_bytes()
    msg = message_from_bytes(eml, policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    base = config.digest.base_url
    client = TestClient(create_app(project.path, now=lambda: NOW), base_url="http://127.0.0.1",
                        client=("127.0.0.1", 50000))  # on the server itself

    up = re.search(r'href="([^"]+/feedback/ada/[0-9a-f]+/up\?s=[0-9a-f]+)"', html).group(1)
    page = client.get(up.removeprefix(base))  # a GET only shows the item and a button
    assert page.status_code == 200 and '<form method="post">' in page.text
    entry_id = up.split("/")[-2]
    with project.store() as s:
        assert s.votes("ada") == {}
    voted = client.post(up.removeprefix(base), data={"do": "vote"})
    assert voted.status_code == 200 and "Noted: more like this" in voted.text
    with project.store() as s:
        assert s.votes("ada") == {entry_id: 1}
    forged = up.replace("/up?", "/down?")  # the signature covers the vote
    assert client.get(forged.removeprefix(base)).status_code == 404

    unsub = msg["List-Unsubscribe"].strip("<>").removeprefix(base)
    confirm = client.get(unsub)
    assert confirm.status_code == 200 and '<form method="post"' in confirm.text
    with project.store() as s:
        assert not s.reader_state("ada").unsubscribed_at
    assert client.post(unsub.replace("?s=", "?s=0"), data={"List-Unsubscribe": "One-Click"}).status_code == 404
    done = client.post(unsub, data={"List-Unsubscribe": "One-Click"})  # RFC 8058 one-click
    assert done.status_code == 200 and "will get no more digests" in done.text
    assert 'action="/resubscribe/ada?s=' in done.text
    with project.store() as s:
        assert s.reader_states()["ada"].unsubscribed_at
    archive = client.get("/archive")
    assert "2026-11-22" in archive.text and ">sent<" in archive.text
    with project.store() as s, time_machine.travel(NOW, tick=False):
        (later,) = send_digests(config, s, [config.users["ada"]], date(2026, 11, 23), NOW,
                                backend_for(config), sleep=lambda _: None)
    assert later.state == "skipped" and later.detail == "unsubscribed"


def test_next_digest_starts_where_the_last_one_ended(project):
    """With a week of lookback, day two would repeat day one's items; the ledger's window end
    makes day two hold only what is new since."""
    config = write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace("[ranking]", '[ranking]\nlookback = "7d"'))
    config = project.config()
    (first,), _ = run(project, config)
    assert first.state == "sent" and first.items == 3
    tomorrow = NOW + timedelta(days=1)
    with project.store() as s, time_machine.travel(tomorrow, tick=False):
        (second,) = send_digests(config, s, [config.users["ada"]], None, tomorrow,
                                 backend_for(config), sleep=lambda _: None)
    assert (second.day, second.state, second.items) == ("2026-11-23", "skipped", 0)
    rank = None
    with time_machine.travel(tomorrow, tick=False):
        rank = project.run("rank", "ada", "--json")
    assert rank.exit_code == 0 and rank.output.strip() == "[]"


def test_starttls_for_real_and_a_server_without_it(project, monkeypatch, tmp_path):
    """STARTTLS against a server with a certificate from a test CA (trusted through
    SSL_CERT_FILE, which the default context honours), then a clear error from a server that
    does not offer STARTTLS."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    handler = Recorder()
    tls = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=server_ctx,
                     require_starttls=True)
    tls.start()
    try:
        smtp_project(project, tls.port, extra='empty_day = "send"')  # day two must connect
        project.path.write_text(project.path.read_text().replace('security = "none"', 'security = "starttls"'))
        config = project.config()
        (result,), _ = run(project, config)
    finally:
        tls.stop()
    assert result.state == "sent" and len(handler.messages) == 1

    plain = Recorder()
    server = Controller(plain, hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        project.path.write_text(project.path.read_text().replace(f"port = {tls.port}", f"port = {server.port}"))
        with time_machine.travel(NOW + timedelta(days=1), tick=False):
            cli = project.run("send")
    finally:
        server.stop()
    assert cli.exit_code == 1 and plain.messages == []
    assert "does not offer STARTTLS; set [smtp] security to \"ssl\"" in cli.output


def test_a_sent_digest_is_shown_again_exactly_as_emailed(project):
    """After the send the reader changes their interests and a day passes: `render --date`
    and the archive still show what the email held, not a ranking redone today."""
    config = write_project(project, NORMAL)
    (result,), _ = run(project, config)
    assert result.state == "sent"
    msg = message_from_bytes((project.root / "outbox" / "2026-11-22" / "ada.eml").read_bytes(),
                             policy=policy.default)
    sent_html = msg.get_body(("html",)).get_content()
    sent_text = msg.get_body(("plain",)).get_content()
    project.path.write_text(project.path.read_text().replace('"style transfer" = 2', '"bees" = 3'))
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        html = project.run("render", "ada", "--date", "2026-11-22").stdout
        text = project.run("render", "ada", "--date", "2026-11-22", "--format", "text").stdout
        redone = json.loads(project.run("rank", "ada", "--date", "2026-11-22", "--json").stdout)

    def same(a, b):  # the email's parts come back with CRLF line ends
        return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()

    assert "Fast style transfer for video" in html and same(html, sent_html)
    assert same(text, sent_text)
    # Ranked today, with the new interest, the same day would look different:
    assert redone[0]["title"] == "Bees prefer blue flowers"
    assert "Bees prefer" not in sent_text.split("TRENDING")[0]


def test_a_sent_digest_whose_entries_were_pruned_still_opens(project):
    config = write_project(project, NORMAL)
    run(project, config)
    with project.store() as s:
        gone = s.db.execute("SELECT id FROM entries WHERE title LIKE 'Fast style%'").fetchone()[0]
        with s.db.conn:  # what `digest prune` does to an old entry: its content goes
            s.db.execute("DELETE FROM entries WHERE id = ?", [gone])
    with time_machine.travel(NOW + timedelta(days=40), tick=False):
        r = project.run("render", "ada", "--date", "2026-11-22", "--format", "text")
    assert r.exit_code == 0, r.output
    assert "Fast style transfer" not in r.stdout and "Sparse attention for long documents" in r.stdout


GRACE = ('[users.grace]\nemail = "grace@example.org"\npapers = "grace.json"\n'
         '[users.grace.interests]\n"sparse attention" = 1\n')


def test_a_library_with_fields_of_the_wrong_type_is_read_and_stops_no_digest(project):
    """CSL-JSON whose fields hold other JSON values than the spec's (another tool's export):
    an internal error in the loader stopped every reader's `digest send`. Now the paper loads
    and the readers' digests go out."""
    (project.root / "grace.json").write_text(
        '[{"title": "Long-context transformers", "abstract": "Block-sparse attention scales.",'
        ' "author": true, "issued": {"date-parts": 5}, "DOI": 7}]')
    write_project(project, NORMAL, "")
    project.path.write_text(project.path.read_text() + GRACE)
    with time_machine.travel(NOW, tick=False):
        sent = project.run("send")
        check = project.run("check")
    assert sent.exit_code == 0, sent.output
    assert "ada 2026-11-22: sent" in sent.output and "grace 2026-11-22: sent" in sent.output
    assert check.exit_code == 0 and "Library of grace: 1 paper from grace.json" in check.output


@pytest.mark.parametrize("breakage", ["not CSL-JSON", "deleted"])
def test_one_readers_broken_library_stops_no_digest(project, breakage, caplog):
    """A library export that breaks after the config was read (the operator's script is
    rewriting it, or it was deleted): every reader still gets their digest, the reader whose
    library it is gets one ranked by their phrases with the reason in its footer, and the
    operator is told once; nothing is sent twice."""
    (project.root / "grace.json").write_text(
        '[{"title": "Sparse attention for long documents", "abstract": "Block-sparse."}]')
    write_project(project, NORMAL, "")
    project.path.write_text(project.path.read_text() + GRACE)
    config = project.config()
    assert config.warnings == ()
    if breakage == "deleted":
        (project.root / "grace.json").unlink()
    else:
        (project.root / "grace.json").write_text("[not json")
    results, _ = run(project, config)
    assert [(r.reader, r.state) for r in results] == [("ada", "sent"), ("grace", "sent")]
    grace = {r.reader: r for r in results}["grace"]
    assert grace.items >= 1  # "sparse attention" still ranks for her
    text = (project.root / "outbox" / "2026-11-22" / "grace.eml").read_text()
    reason = "cannot read the library" if breakage == "deleted" else "not valid CSL-JSON"
    assert "Your paper library:" in text and reason in text
    # Her footer names the file, not the folder it lives in on the server.
    mail = message_from_bytes((project.root / "outbox" / "2026-11-22" / "grace.eml").read_bytes(),
                              policy=policy.default)
    for part in ("plain", "html"):
        body = " ".join(mail.get_body((part,)).get_content().split())
        assert f"Your paper library: grace.json: {reason}" in body
        assert str(project.root) not in body
    assert "Your paper library" not in (project.root / "outbox" / "2026-11-22" / "ada.eml").read_text()
    told = [r.getMessage() for r in caplog.records if r.name == "digest.rank"]
    assert len(told) == 1 and "grace.json" in told[0] and "ranked without this library" in told[0]
    # The CLI too (a fresh process would read the config again: a missing file is a warning
    # there, not an error), and `digest check` still fails on it.
    with time_machine.travel(NOW, tick=False):
        again = project.run("send")
        check = project.run("check")
    assert again.exit_code == 0 and "grace 2026-11-22: already done" in again.output
    assert check.exit_code == 1 and "grace.json" in check.output and "Traceback" not in check.output
    # `digest rank` says the reason itself, once: not again through the operator's log.
    caplog.clear()
    with time_machine.travel(NOW, tick=False):
        ranked = project.run("rank", "grace")
    assert ranked.exit_code == 0 and ranked.output.count(reason) == 1
    assert not [r for r in caplog.records if r.name == "digest.rank"]
    assert logging.getLogger("digest.rank").level == logging.NOTSET  # as it was
