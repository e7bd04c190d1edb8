"""`digest run`: one digest per reader and local date across DST changes, catch-up after
downtime, one scheduler per database, clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from test_render import NORMAL, NOW, write_project

from digest import schedule
from digest.schedule import due_digests, send_tick


def tick(project, config, start, span, step):
    """Scheduler ticks every `step` over `span`, each due digest recorded as sent: the local
    dates that fired (with when) and those recorded as missed."""
    fired: dict[str, list[datetime]] = {}
    missed = []
    with project.store() as s:
        now = start
        while now < start + span:
            due, late = due_digests(config, s, now)
            for m in late:
                missed.append(m.day)
                assert s.record_delivery(m.user.name, m.day, "skipped", now)
            for d in due:
                fired.setdefault(d.day, []).append(now)
                assert s.claim_deliveries([(d.user.name, d.day)], "me", now)
                assert s.advance(d.user.name, d.day, "me", "sent", now)
            now += step
    return fired, missed


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
    fired, missed = tick(project, config, start, timedelta(days=4), timedelta(minutes=5))
    # only the day before the first is missed: its time was before the start
    assert set(missed) <= {(change - timedelta(days=3)).isoformat()}
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


@pytest.mark.parametrize(("extra", "weekdays"), [
    ('send_days = ["sun", "wed"]', {6, 2}),
    ('cadence = "weekly"', {0}),
    ('skip_weekends = true', {0, 1, 2, 3, 4}),
])
def test_a_readers_cadence_sends_on_their_days_only_across_dst(project, extra, weekdays):
    """Europe/Berlin springs forward on Sunday 28 March 2027 (02:30 does not exist that day):
    ticks every 10 minutes for ten days send exactly on the reader's weekdays, once each."""
    config = reader_config(project, "Europe/Berlin", "02:30")
    project.path.write_text(project.path.read_text().replace(
        '[users.ada.interests]', extra + '\n[users.ada.interests]'))
    config = project.config()
    zone = ZoneInfo("Europe/Berlin")
    start = datetime(2027, 3, 24, 0, 0, tzinfo=zone).astimezone(UTC)
    fired, _ = tick(project, config, start, timedelta(days=10), timedelta(minutes=10))
    days = [start.astimezone(zone).date() + timedelta(days=k) for k in range(10)]
    assert sorted(fired) == [d.isoformat() for d in days if d.weekday() in weekdays]
    assert all(len(v) == 1 for v in fired.values())
    if "2027-03-28" in fired:  # the gap: 02:30 fires at 03:30 summer time
        assert fired["2027-03-28"][0].astimezone(zone).strftime("%H:%M") in ("03:30", "03:40")


def test_send_on_a_day_that_is_no_send_day_says_so_and_sends_nothing(project):
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace(
        '[users.ada.interests]', 'send_days = ["mon", "wed", "fri"]\n[users.ada.interests]'))
    with time_machine.travel(NOW, tick=False):
        r = project.run("send", "--date", "2026-11-24")  # a Tuesday
    assert r.exit_code == 0, r.output
    assert "ada 2026-11-24: skipped, 0 items (not one of their send days: mon, wed, fri)" in r.output
    assert not (project.root / "outbox").exists() or not list((project.root / "outbox").rglob("*.eml"))
    with project.store() as s:
        assert s.delivery("ada", "2026-11-24") is None  # nothing recorded: the day was never due


def test_a_weekly_readers_first_digest_holds_the_whole_week(project):
    from test_render import entry

    week_old = NOW - timedelta(days=5)
    write_project(project, [*NORMAL, ("arxiv", entry("early", "Style transfer on Tuesday",
                                                     "Early in the week.", published=week_old))])
    with project.store() as s:  # it was fetched early in the week too
        s.db.execute("UPDATE entries SET fetched = ? WHERE title = 'Style transfer on Tuesday'",
                     [week_old.isoformat()])
        s.db.execute("UPDATE sightings SET first_seen = ? WHERE entry_id = (SELECT id FROM entries "
                     "WHERE title = 'Style transfer on Tuesday')", [week_old.isoformat()])
        s.db.conn.commit()
    project.path.write_text(project.path.read_text().replace(
        '[users.ada.interests]', 'cadence = "weekly"\n[users.ada.interests]'))
    monday = "2026-11-23"
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        weekly = project.run("rank", "ada", "--date", monday, "--json")
    assert weekly.exit_code == 0, weekly.output
    assert "Style transfer on Tuesday" in weekly.stdout
    project.path.write_text(project.path.read_text().replace('cadence = "weekly"\n', ""))
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        daily = project.run("rank", "ada", "--date", monday, "--json")
    assert "Style transfer on Tuesday" not in daily.stdout  # a daily reader's window is a day


@pytest.mark.parametrize(("extra", "words"), [
    ('send_days = ["mon", "funday"]', "[users.ada] send_days names 'funday', which is not a weekday"),
    ('send_days = ["sat", "sun"]\nskip_weekends = true', "[users.ada] skip_weekends leaves no day to send on"),
])
def test_send_days_that_are_no_weekdays_are_a_config_error(project, extra, words):
    write_project(project, NORMAL)
    project.path.write_text(project.path.read_text().replace(
        '[users.ada.interests]', extra + '\n[users.ada.interests]'))
    r = project.run("check")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert words in r.output


def test_run_prunes_old_content_at_start_but_not_what_a_reader_voted_on(project):
    """A real `digest run` prunes at start-up (then daily): entry content older than
    [digest] keep goes, except an entry a reader voted on; keep = "never" prunes nothing."""
    from digest.normalize import make_entry

    project.write('[feeds.a]\npath = "a.xml"\n', extra_digest='keep = "30d"\n')
    now = datetime.now(UTC)
    ages = {"voted": 400, "old": 400, "recent": 2}
    with project.store() as s:
        for name, days in ages.items():
            when = now - timedelta(days=days)
            s.add_entries("a", [make_entry(
                guid=f"urn:{name}", link=f"https://b.example/{name}", title=f"The {name} paper here",
                summary="text", summary_is_html=False, authors=[], categories=[], published=when,
                fetched=when)], when)
        s.set_vote("ada", next(e.id for e in s.entries_for_ranking() if "voted" in e.title), 1, now)
    proc = subprocess.Popen([sys.executable, "-m", "digest", "--config", str(project.path), "run"],
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True)
    reader.start()
    seen, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:  # bounded, even if the line never comes
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=1))
            if "prune:" in seen[-1]:
                break
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    reader.join(timeout=60)
    log = "".join(seen + list(lines.queue))
    assert proc.returncode == 0 and "prune: 1 entries older than 30 days" in log, log
    with project.store() as s:
        assert sorted(e.title for e in s.entries_for_ranking()) == [
            "The recent paper here", "The voted paper here"]
    project.write('[feeds.a]\npath = "a.xml"\n', extra_digest='keep = "never"\n')
    schedule.prune_tick(project.config(), now + timedelta(days=1000))
    with project.store() as s:
        assert s.count_entries() == 2
