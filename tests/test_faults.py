"""Exactly once, proven by breaking things: concurrent runs, a server that stores and then
times out or hangs up, greylisting during an overlap, SIGKILL mid-run, `digest run` racing
`digest send` (real processes and a real SMTP server on 127.0.0.1; tests/smtp_faults.py), and
the ledger rules under them: leases, unconfirmed reports, the deliberate resend, identity."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date, timedelta
from email import message_from_bytes, policy

import pytest
import smtp_faults as faults
import time_machine
from test_render import NORMAL, NOW
from test_send import run, smtp_project

from digest.deliver import backend_for
from digest.ledger import LEASE
from digest.models import iso_utc
from digest.schedule import send_tick
from digest.send import Heartbeat, send_digests

pytestmark = pytest.mark.slow


def exactly_once(t: faults.Tally) -> None:
    assert t.duplicates == 0 and t.silent == 0, t.problems
    assert t.reader_dates > 0


def test_two_sends_started_together(tmp_path):
    t = faults.concurrent_sends(tmp_path, rounds=2, extra_readers=3)
    exactly_once(t)
    assert t.messages == t.reader_dates and t.unconfirmed == 0


def test_server_stores_then_replies_after_the_timeout(tmp_path):
    t = faults.late_reply(tmp_path, extra_readers=1)
    exactly_once(t)
    assert t.messages == t.reader_dates == t.unconfirmed  # each arrived once, each reported


def test_server_stores_then_drops_the_connection(tmp_path):
    t = faults.drop_after_storing(tmp_path, extra_readers=1)
    exactly_once(t)
    assert t.messages == t.reader_dates == t.unconfirmed


def test_greylisting_with_a_second_send_during_the_wait(tmp_path):
    t = faults.greylisting(tmp_path, extra_readers=0)
    exactly_once(t)
    assert t.messages == t.reader_dates and t.unconfirmed == 0
    assert t.overlaps >= 1  # the second run met rows the first held through its wait


def test_sigkill_mid_run_then_reruns(tmp_path):
    t = faults.killed_mid_run(tmp_path, rounds=4, extra_readers=5)
    exactly_once(t)
    # Every reader-date arrived once, or may have (killed after DATA) and is reported.
    assert t.messages + t.unconfirmed >= t.reader_dates


def test_kill_between_sending_and_sent(tmp_path):
    """The server stores the first digest and, before its reply, the sender is SIGKILLed: that
    digest arrived once and is named unconfirmed; the rerun sends everyone else, once."""
    import os
    import signal

    with faults.Server() as server:
        path = faults.make_project(tmp_path, server.port, extra_readers=2)
        (d,) = faults.dates(0, 1)
        proc = faults.digest(path, "send", "--date", d)
        server.on_store = lambda n: os.kill(proc.pid, signal.SIGKILL) if n == 1 else None
        proc.wait(timeout=faults.BOUND)
        assert proc.returncode == -signal.SIGKILL and server.count() == 1
        server.on_store = None
        rerun = faults.rerun_until_done(path, d)
        t = faults.tally(path, server, [d])
    exactly_once(t)
    assert t.messages == t.reader_dates == 5 and t.unconfirmed == 1
    assert "UNCONFIRMED" in rerun[0] and "stopped while handing it to the SMTP server" in rerun[0]


def test_run_start_up_catch_up_racing_a_send(tmp_path):
    t = faults.run_races_send(tmp_path, extra_readers=3)
    exactly_once(t)
    assert t.messages == t.reader_dates


# -- the rules behind it, one at a time -------------------------------------------------------

def test_a_live_runs_lease_is_renewed_and_a_dead_ones_lapses(project):
    project.write('[feeds.f]\npath = "f.xml"\n[users.ada]\nemail = "ada@example.org"\n')
    key = [("ada", "2026-11-22")]
    with project.store() as s, time_machine.travel(NOW, tick=False) as clock:
        assert s.claim_deliveries(key, "host:1:slow", NOW)
        with Heartbeat(s.path, "host:1:slow", every=0.01) as heartbeat:
            heartbeat.beat()
            clock.move_to(NOW + LEASE * 3)  # the slow run works on, far past one lease
            deadline = time.monotonic() + 10
            while s.delivery(*key[0]).lease_until <= iso_utc(NOW + LEASE * 3):  # bounded
                assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
                time.sleep(0.01)
            assert not s.claim_deliveries(key, "host:2:other", NOW + LEASE * 3)
        clock.move_to(NOW + LEASE * 5)  # it stopped beating (crashed): the lease lapses
        assert s.claim_deliveries(key, "host:2:other", NOW + LEASE * 5)
        assert s.delivery(*key[0]).owner == "host:2:other"
        # The first run comes back: every step is conditional on ownership.
        assert not s.advance("ada", "2026-11-22", "host:1:slow", "sending", NOW)


def test_unconfirmed_is_reported_everywhere_and_resent_only_on_request(project):
    with faults.Server() as server:
        config = smtp_project(project, server.port)
        server.drop = True
        with time_machine.travel(NOW, tick=False):
            first = project.run("send")
        assert first.exit_code == 1 and len(server.stored) == 1
        assert "ada 2026-11-22: UNCONFIRMED" in first.output
        assert "closed the connection" in first.output and "after the whole message" in first.output
        assert "digest send --resend-unconfirmed" in first.output
        server.drop = False
        with time_machine.travel(NOW + timedelta(hours=1), tick=False):
            again = project.run("send", "--date", "2026-11-22")
            check = project.run("check")
            feeds = project.run("feeds")
            send_tick(config, NOW + timedelta(hours=1))  # the scheduler leaves it alone too
        assert again.exit_code == 1 and len(server.stored) == 1
        assert "not sent again" in again.output
        hint = "digest send ada --date 2026-11-22 --resend-unconfirmed"
        assert "the digest of ada for 2026-11-22 is unconfirmed" in check.output and hint in check.output
        assert "The digest of ada for 2026-11-22 is unconfirmed" in feeds.output
        from starlette.testclient import TestClient

        from digest.preview import create_app

        health = TestClient(create_app(project.path), base_url="http://127.0.0.1",
                        client=("127.0.0.1", 50000)).get("/health")  # on the server itself
        assert "Digests that may not have arrived" in health.text and "--resend-unconfirmed" in health.text
        with time_machine.travel(NOW + timedelta(hours=2), tick=False):
            resent = project.run("send", "--resend-unconfirmed")
            nothing = project.run("send", "--resend-unconfirmed")
        assert resent.exit_code == 0, resent.output
        assert "ada 2026-11-22: sent" in resent.output and len(server.stored) == 2
        assert "Nothing to resend" in nothing.output and len(server.stored) == 2
        assert server.stored[0] == server.stored[1]  # same reader, same date: the same digest
    with project.store() as s:
        row = s.delivery("ada", "2026-11-22")
    assert row.state == "sent" and row.detail == "resent on request"
    assert "is unconfirmed" not in project.run("check").output


def test_failed_digests_are_retried_by_the_scheduler_within_catch_up(project, smtp_server):
    config = smtp_project(project, smtp_server.port)
    smtp_server.replies = ["451 4.3.0 busy"] * 3  # all three attempts of the first tick
    with time_machine.travel(NOW, tick=False), project.store() as s:
        (r,) = send_digests(config, s, [config.users["ada"]], None, NOW, backend_for(config),
                                sleep=lambda _: None)
    assert r.state == "failed" and "Gave up after 3 attempts" in r.detail
    soon, later = NOW + timedelta(minutes=5), NOW + timedelta(minutes=16)
    with time_machine.travel(soon, tick=False):
        send_tick(config, soon)  # before its retry time: left alone
    assert smtp_server.messages == []
    with time_machine.travel(later, tick=False):
        send_tick(config, later)
    assert len(smtp_server.messages) == 1
    with project.store() as s:
        row = s.delivery("ada", "2026-11-22")
    assert row.state == "sent" and row.attempts == 4


def test_an_outbox_send_cut_off_before_the_file_is_sent_by_the_next_run(project):
    from test_render import write_project

    config = write_project(project, NORMAL)

    class Crash(BaseException):
        pass

    class DiesBeforeWriting(type(backend_for(config))):
        def send(self, out, commit):
            assert commit()  # 'sending' is on disk; then the process dies
            raise Crash

    with pytest.raises(Crash):
        run(project, config, backend=DiesBeforeWriting(config.digest.outbox))
    later = NOW + LEASE + timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        send_tick(config, later)  # `digest run`, not only `digest send`
    assert (project.root / "outbox" / "2026-11-22" / "ada.eml").is_file()
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").state == "sent"


def test_the_display_name_is_not_the_identity(project, smtp_server):
    config = smtp_project(project, smtp_server.port, extra='empty_day = "send"')
    (first,), _ = run(project, config)
    assert first.state == "sent"
    text = project.path.read_text().replace('email = "ada@example.org"',
                                            'email = "ada@example.org"\nname = "Ada, Countess"')
    project.path.write_text(text)
    config = project.config()
    assert config.users["ada"].name == "ada" and config.users["ada"].display_name == "Ada, Countess"
    (again,), _ = run(project, config)
    assert again.state == "already" and len(smtp_server.messages) == 1
    with project.store() as s, time_machine.travel(NOW, tick=False):
        (tomorrow,) = send_digests(config, s, [config.users["ada"]], date(2026, 11, 23), NOW,
                                   backend_for(config), sleep=lambda _: None)
    assert tomorrow.state == "sent"
    old, new = (message_from_bytes(m, policy=policy.default) for m in smtp_server.messages)
    assert new["To"].addresses[0].display_name == "Ada, Countess"
    assert new["To"].addresses[0].addr_spec == "ada@example.org"
    assert "for Ada, Countess" in new.get_body(("plain",)).get_content()
    # The links name the reader by key, so the old email's links still work.
    assert old["List-Unsubscribe"].split("?")[0] == new["List-Unsubscribe"].split("?")[0]
    assert "/unsubscribe/ada" in new["List-Unsubscribe"]


def test_removing_a_reader_keeps_their_ledger(project, smtp_server):
    config = smtp_project(project, smtp_server.port)
    run(project, config)
    body = project.path.read_text()
    project.path.write_text(body.replace("[users.ada", "[users.bob").replace("ada@", "bob@"))
    run(project, project.config())
    project.path.write_text(body)  # ada is back the same day: nothing twice
    (back,), _ = run(project, project.config())
    assert back.state == "already" and len(smtp_server.messages) == 2
    with project.store() as s:
        assert {r.reader for r in s.deliveries()} == {"ada", "bob"}


def test_a_stale_reused_connection_is_reconnected_without_a_second_copy(project, smtp_server):
    config = smtp_project(project, smtp_server.port)
    backend = backend_for(config)
    backend.conn = backend._connect()
    backend.conn.sock.shutdown(socket.SHUT_RDWR)  # the idle connection died (server, NAT)
    (r,), _ = run(project, config, backend=backend)
    assert r.state == "sent" and len(smtp_server.messages) == 1 and backend.connections == 2


def test_the_claim_is_exclusive_between_threads(project):
    """Many connections claiming the same rows at once: each row goes to exactly one."""
    project.write('[feeds.f]\npath = "f.xml"\n[users.ada]\nemail = "ada@example.org"\n')
    keys = [(f"r{i}", "2026-11-22") for i in range(50)]
    won: list[set] = []
    start = threading.Barrier(4)

    def claim(me: str) -> None:
        with project.store() as s:
            start.wait()
            won.append(s.claim_deliveries(keys, me, NOW))

    threads = [threading.Thread(target=claim, args=(f"h:{i}:t",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(len(w) for w in won) == len(keys)
    assert set().union(*won) == set(keys)


def test_ranking_inside_a_send_may_still_fork(project, monkeypatch):
    """The ranker forks its workers only in a single-threaded process; the lease heartbeat
    must not have started before the digests are ranked (it did: ranking ran 4× slower)."""
    from test_render import write_project

    import digest.send

    config = write_project(project, NORMAL)
    seen = []
    real = digest.send.render_digests

    def spy(*args, **kw):
        seen.append(threading.active_count())
        yield from real(*args, **kw)

    monkeypatch.setattr(digest.send, "render_digests", spy)
    before = threading.active_count()  # another test's loopback server may still be up
    (r,), _ = run(project, config)
    assert r.state == "sent" and seen == [before]


def test_lines_starting_with_a_dot_arrive_intact(project, smtp_server):
    """Dot-stuffing (RFC 5321 4.5.2) is skipped when no line starts with "."; when one does,
    the server must still get it back unstuffed."""
    from digest.deliver import Outgoing

    config = smtp_project(project, smtp_server.port)
    body = b"Subject: dots\r\n\r\n.leading dot\r\nplain\r\n..two dots\r\n.\r\nend\r\n"
    backend = backend_for(config)
    backend.send(Outgoing("ada", "2026-11-22", "digest@example.org", "ada@example.org", body))
    backend.send(Outgoing("ada", "2026-11-23", "digest@example.org", "ada@example.org",
                          b"Subject: none\r\n\r\nno dots here\r\n"))
    backend.close()
    first, second = smtp_server.messages
    assert first.replace(b"\r\n", b"\n").endswith(b".leading dot\nplain\n..two dots\n.\nend\n")
    assert second.replace(b"\r\n", b"\n").endswith(b"no dots here\n")


def test_a_server_that_refuses_the_greeting_is_a_clear_permanent_error(project):
    """EHLO and HELO both refused (a blocklisted sender): one sentence, no traceback, not
    retried, and nothing marked as possibly delivered."""
    import socketserver

    class Refuser(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 test ESMTP\r\n")
            for line in self.rfile:
                if line.upper().startswith(b"QUIT"):
                    self.wfile.write(b"221 bye\r\n")
                    return
                self.wfile.write(b"554 5.7.1 your host is blocklisted\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Refuser)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = smtp_project(project, server.server_address[1])
        (r,), waits = run(project, config)
    finally:
        server.shutdown()
        server.server_close()
    assert r.state == "failed" and waits == []
    assert "refused the digest for ada <ada@example.org> for good (554 5.7.1 your host is blocklisted)" in r.detail
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").state == "failed"


def test_a_failed_digest_past_catch_up_stays_failed_and_reported(project, smtp_server):
    """Past catch_up the scheduler stops retrying a failed digest, and does not relabel it as
    "missed": it stays failed (and the reader stays marked) for `digest send` by hand."""
    config = smtp_project(project, smtp_server.port)
    smtp_server.replies = ["550 5.1.1 mailbox unavailable"]
    with time_machine.travel(NOW, tick=False), project.store() as s:
        (r,) = send_digests(config, s, [config.users["ada"]], None, NOW, backend_for(config),
                            sleep=lambda _: None)
    assert r.state == "failed"
    late = NOW + timedelta(hours=13)  # catch_up is 12 h; the retry time (1 h) passed long ago
    with time_machine.travel(late, tick=False):
        send_tick(config, late)
    with project.store() as s:
        row = s.delivery("ada", "2026-11-22")
    assert row.state == "failed" and "550 5.1.1" in row.detail and smtp_server.messages == []
    with time_machine.travel(late, tick=False):
        assert "reader ada is failing" in project.run("check").output
