"""Dates, each rule once: a day as the CLI or a URL gives it, a reader's local today, the
send instant of a local date, and the window a digest covers.

A day is parsed once, at the edge (the CLI, a URL), into a `date`; everything inward takes a
`date` (or None for "the reader's today, up to now"). The send instant of a local date is its
send_time in the reader's zone, so each local date has exactly one whatever DST does: a
send_time inside the spring-forward gap fires at the same wall time plus the shift (02:30 →
03:30), one inside the fall-back overlap at its first occurrence (fold=0)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.errors import DigestError
from digest.settings import UserConfig


class BadDay(DigestError):
    """A day that is not a date. Its sentence names no option: the CLI and the web each say
    where it came from (`where`)."""

    def __init__(self, text: str, where: str = ""):
        self.text, self.where = text, where
        super().__init__(f"{where + ' ' if where else ''}{text!r} is not a date from 1970 on; "
                         "write it as YYYY-MM-DD.")

    def __reduce__(self):
        return type(self), (self.text, self.where)


def parse_day(text: str, where: str = "") -> date:
    """A local date written YYYY-MM-DD. Years outside 1970–9998 are refused too: the send
    instant of 0001-01-01 in a zone east of UTC is out of datetime's range."""
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or not 1970 <= parsed.year <= 9998:
        raise BadDay(text, where)
    return parsed


def local_today(user: UserConfig, now: datetime) -> date:
    return now.astimezone(ZoneInfo(user.timezone)).date()


def digest_day(user: UserConfig, day: date | None, now: datetime) -> date:
    """The local date of the reader's digest: `day`, or their today."""
    return day or local_today(user, now)


def send_instant(user: UserConfig, day: date) -> datetime:
    """When the digest of local date `day` is due, in UTC (DST: see the module docstring)."""
    return datetime.combine(day, user.send_time, tzinfo=ZoneInfo(user.timezone)).astimezone(UTC)


def passed_send_days(user: UserConfig, now: datetime) -> list[tuple[date, datetime]]:
    """(local date, send instant) of the reader's yesterday and today that are send days
    (send_days, cadence, skip_weekends) and whose send instant has passed."""
    today = local_today(user, now)
    return [(day, at) for day in (today - timedelta(days=1), today)
            if user.sends_on(day) and (at := send_instant(user, day)) <= now]


def digest_window(lookback: int, user: UserConfig, day: date | None, now: datetime,
                  last_sent: datetime | None = None) -> tuple[datetime | None, datetime]:
    """(since, until] for the reader's digest of local date `day` (None: today, up to now):
    from where their previous digest ended. With no previous one, `lookback` seconds back, or
    back to the send instant of their previous send day when that is further (a weekly
    reader's first digest holds the week)."""
    local = digest_day(user, day, now)
    until = send_instant(user, local) if day else now
    if last_sent and last_sent <= until:
        return last_sent, until
    since = until - timedelta(seconds=lookback)
    if len(user.send_days) == 7:
        return since, until
    return min(since, send_instant(user, user.previous_send_day(local))), until
