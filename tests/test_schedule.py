"""`digest run`: one digest per reader and local date across DST changes, catch-up after
downtime, one scheduler per database, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from test_render import NORMAL, NOW, write_project

from digest import schedule
from digest.schedule import due_digests, send_tick


def reader_config(project, tz, send_time, extra=""):
    write_project(project, NORMAL, extra)
    text = project.path.read_text().replace('timezone = "Europe/Berlin"',
                                            f'timezone = "{tz}"\nsend_time = "{send_time}"')
    project.path.write_text(text)
    return project.config()


@pytest.mark.parametrize(("tz", "change"), [
    ("America/New_York", date(2026, 3, 8)), ("America/New_York", date(2026, 11, 1)),
    ("Europe/Berlin", date(2026, 3, 29)), ("Europe/Berlin", date(2026, 10, 25)),
])
@pytest.mark.parametrize("send_time", ["01:30", "02:30", "07:00"])
def test_one_digest_per_local_date_across_dst(project, tz, change, send_time):
    """Ticks every 5 minutes for four days around a DST change: every local date is sent once,
    at the first tick after its send instant; a send_time in the spring gap fires an hour later
    in wall time, one in the autumn overlap at its first occurrence."""
    config = reader_config(project, tz, send_time)
    zone = ZoneInfo(tz)
    start = datetime.combine(change - timedelta(days=2), datetime.min.time(), zone).astimezone(UTC)
    fired: dict[str, list[datetime]] = {}
    with project.store() as s:
        now = start
        while now < start + timedelta(days=4):
            due, missed = due_digests(config, s, now)
            for m in missed:  # only the day before the first: its time was before the start
                assert m.day == (change - timedelta(days=3)).isoformat()
                assert s.record_delivery(m.user.name, m.day, "skipped", now)
            for d in due:
                fired.setdefault(d.day, []).append(now)
                assert s.claim_deliveries([(d.user.name, d.day)], "me", now)
                assert s.advance(d.user.name, d.day, "me", "sent", now)
            now += timedelta(minutes=5)
    days = [(change + timedelta(days=k)).isoformat() for k in (-2, -1, 0, 1)]
    assert sorted(fired) == days
    assert all(len(v) == 1 for v in fired.values()), fired
    hour, minute = map(int, send_time.split(":"))
    for day, (when,) in fired.items():
        local = when.astimezone(zone)
        assert local.date().isoformat() == day
        expected = datetime.combine(date.fromisoformat(day), datetime.min.time()).replace(hour=hour, minute=minute)
        shift = (local.replace(tzinfo=None) - expected)
        assert timedelta(0) <= shift < timedelta(minutes=5) or timedelta(hours=1) <= shift < timedelta(hours=1, minutes=5)
        if shift >= timedelta(hours=1):  # only a wall time that does not exist that day
            assert day == change.isoformat() and change.month == 3 and send_time == "02:30"


def test_catch_up_after_downtime_and_missed_beyond_the_window(project):
    config = reader_config(project, "UTC", "07:00", extra='catch_up = "4h"')
    later = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)  # down from before 07:00 until 10:00
    with time_machine.travel(later, tick=False):
        send_tick(config, later)
        send_tick(config, later + timedelta(minutes=1))  # the next tick: nothing again
    outbox = list((project.root / "outbox").rglob("*.eml"))
    assert [p.relative_to(project.root / "outbox").as_posix() for p in outbox] == ["2026-11-22/ada.eml"]
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").state == "sent"
    # Down again from the 23rd's 07:00 until 12:00: 5 h late, past catch_up = 4h.
    late = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with time_machine.travel(late, tick=False):
        send_tick(config, late)
    with project.store() as s:
        row = s.delivery("ada", "2026-11-23")
    assert row.state == "skipped" and row.detail.startswith("missed:")
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 1
    check = project.run("check")
    assert check.exit_code == 0


def test_a_second_scheduler_is_refused(project):
    config = reader_config(project, "UTC", "07:00")
    held = schedule.lock(config.digest.database)
    try:
        result = project.run("run")
    finally:
        held.close()
    assert result.exit_code == 1
    assert "another `digest run` (pid" in result.output and "is already using" in result.output


def test_sigterm_stops_cleanly(project):
    reader_config(project, "UTC", "07:00")
    proc = subprocess.Popen([sys.executable, "-m", "digest", "--config", str(project.path), "run"],
                            stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # bounded: wait for the start-up line
        line = proc.stderr.readline()
        lines.append(line)
        if "started" in line or not line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    log = "".join(lines) + rest
    assert proc.returncode == 0, log
    assert "digest run: stopped" in log and "Traceback" not in log
    assert (project.root / "digest.db.run.lock").exists()


def test_stopping_ends_a_retry_wait_and_the_next_start_sends(project, smtp_server):
    """SIGTERM during an SMTP backoff: the wait ends at once (no sitting out minutes), the
    digest stays pending rather than failed, and the next start sends it, once."""
    import threading

    from test_send import smtp_project

    config = smtp_project(project, smtp_server.port)  # 3 attempts, 10 s apart
    smtp_server.replies = ["451 4.3.0 Try again later"]
    stop = threading.Event()
    stop.set()  # already stopping: the first attempt is made, the wait after it is not
    with time_machine.travel(NOW, tick=False):
        send_tick(config, NOW, stop=stop)
        with project.store() as s:
            row = s.delivery("ada", "2026-11-22")
        assert row.state == "pending" and row.attempts == 1 and "451" in row.detail
        assert smtp_server.messages == []
        send_tick(config, NOW)  # the next start
    with project.store() as s:
        assert s.delivery("ada", "2026-11-22").state == "sent"
    assert len(smtp_server.messages) == 1
