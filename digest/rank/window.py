"""The time window a reader's digest covers, and dates as the CLI and URLs give them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.config import Config, UserConfig
from digest.errors import ConfigError


def parse_day(day: str, label: str = "--date") -> date:
    """A local date from the CLI's --date (or, with another label, a URL). Years outside
    1970–9998 are refused too: the send instant of 0001-01-01 in a zone east of UTC is out of
    datetime's range."""
    try:
        parsed = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError:
        parsed = None
    if parsed is None or not 1970 <= parsed.year <= 9998:
        raise ConfigError([f"{label} {day!r} is not a date from 1970 on; write it as "
                           "YYYY-MM-DD."]) from None
    return parsed


def digest_window(config: Config, user: UserConfig, day: str | None, now: datetime,
                  last_sent: datetime | None = None) -> tuple[datetime | None, datetime]:
    """(since, until] for the reader's digest of local date `day` (default: up to now): from
    where their previous digest ended. With no previous one, `lookback` back, or back to the
    send time of their previous send day when that is further (a weekly reader's first
    digest holds the week)."""
    zone = ZoneInfo(user.timezone)
    local = parse_day(day) if day else now.astimezone(zone).date()
    until = datetime.combine(local, user.send_time, tzinfo=zone).astimezone(UTC) if day else now
    if last_sent and last_sent <= until:
        return last_sent, until
    since = until - timedelta(seconds=config.ranking.lookback)
    if len(user.send_days) == 7:
        return since, until
    previous = datetime.combine(user.previous_send_day(local), user.send_time,
                                tzinfo=zone).astimezone(UTC)
    return min(since, previous), until
