"""dates.py: the send instant of a local date across DST, the digest window, and one rule for
a bad day whether it comes from the command line or from a URL."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import Project
from test_render import NORMAL, write_project

from digest.dates import BadDay, digest_day, digest_window, local_today, parse_day, send_instant


def reader(project: Project, zone: str, send_time: str, extra: str = ""):
    project.write(f'[feeds.f]\npath = "f.xml"\n[users.u]\nemail = "u@example.org"\n'
                  f'timezone = "{zone}"\nsend_time = "{send_time}"\n{extra}')
    return project.config().users["u"]


@pytest.mark.parametrize(("zone", "day", "send_time", "utc"), [
    # Spring forward: 02:30 does not exist on that night; it is sent at 03:30 summer time.
    ("Europe/Berlin", date(2027, 3, 28), "02:30", datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
    ("America/New_York", date(2027, 3, 14), "02:30", datetime(2027, 3, 14, 7, 30, tzinfo=UTC)),
    # Fall back: 02:30 happens twice; the first one (summer time) is the send instant.
    ("Europe/Berlin", date(2026, 10, 25), "02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ("America/New_York", date(2026, 11, 1), "01:30", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    # An ordinary day on either side.
    ("Europe/Berlin", date(2026, 10, 26), "02:30", datetime(2026, 10, 26, 1, 30, tzinfo=UTC)),
])
def test_one_send_instant_per_local_date_across_dst(project, zone, day, send_time, utc):
    user = reader(project, zone, send_time)
    assert send_instant(user, day) == utc
    # Each local date of the week around the change has exactly one instant, a day or 23/25
    # hours apart, always increasing.
    instants = [send_instant(user, day + timedelta(days=k)) for k in range(-3, 4)]
    gaps = {b - a for a, b in itertools.pairwise(instants)}
    assert gaps <= {timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)}


def test_local_today_and_the_window_follow_the_readers_zone(project):
    user = reader(project, "Pacific/Auckland", "07:00")
    now = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)  # already Sunday 22nd in Auckland
    assert local_today(user, now) == date(2026, 11, 22)
    assert digest_day(user, None, now) == date(2026, 11, 22)
    assert digest_day(user, date(2026, 11, 1), now) == date(2026, 11, 1)
    since, until = digest_window(86400, user, date(2026, 11, 22), now)
    assert until == send_instant(user, date(2026, 11, 22)) and until - since == timedelta(days=1)
    since, until = digest_window(86400, user, None, now)  # today: up to now
    assert until == now
    weekly = reader(project, "UTC", "07:00", 'cadence = "weekly"')
    since, until = digest_window(86400, weekly, date(2026, 11, 23), now)  # a Monday
    assert until - since == timedelta(days=7)  # the first weekly digest holds the week


@pytest.mark.parametrize("text", ["2026-13-45", "yesterday", "0001-01-01", "2026-02-30", ""])
def test_a_bad_day_is_refused_by_one_rule_in_two_wordings(project, live_preview, text):
    with pytest.raises(BadDay) as plain:
        parse_day(text)
    assert str(plain.value) == f"{text!r} is not a date from 1970 on; write it as YYYY-MM-DD."
    if not text:
        return
    write_project(project, NORMAL)
    cli = project.run("render", "ada", "--date", text)
    assert cli.exit_code == 1
    assert cli.output.strip() == f"Error: --date {plain.value!s}"
    import httpx

    web = httpx.get(live_preview(project) + f"/digest/ada/{text}", timeout=30)
    assert web.status_code == 400
    assert f"the date {plain.value!s}".replace("'", "&#39;") in web.text
    assert "--date" not in web.text  # the web does not speak of command-line options


def test_a_good_day_parses_once_into_a_date():
    assert parse_day("2026-11-22") == date(2026, 11, 22)
    assert parse_day("1970-01-01") == date(1970, 1, 1)
