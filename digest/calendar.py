"""When a source announces, so that a thin digest reads as a quiet day and a stuck feed as a
stuck feed. arXiv announces new papers Sunday to Thursday at 20:00 US Eastern (the listings
dated Monday to Friday) and not on its holidays; one small table holds that, keyed by host,
rather than a guess per feed. Pure functions: the caller passes the times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

# A feed is "stalled" only when an announcement this long past brought it nothing: arXiv's
# RSS and API catch up with an announcement within a few hours.
GRACE = timedelta(hours=6)


@dataclass(frozen=True)
class Calendar:
    source: str  # as the footer names it
    hosts: tuple[str, ...]  # a feed on one of these hosts (or a subdomain) follows it
    zone: str
    evenings: frozenset[int]  # weekdays (date.weekday()) with an announcement
    at: time  # local time of the announcement
    holidays: tuple[tuple[str, int, int, int], ...]  # (name, month, day or weekday, nth)

    def holiday(self, day: date) -> str:
        """The name of the holiday on `day`, or ''. A rule is a fixed date (nth 0) or the
        nth weekday of a month."""
        for name, month, value, nth in self.holidays:
            if day.month == month and (day.day == value if nth == 0 else
                                       day.weekday() == value and (day.day - 1) // 7 + 1 == nth):
                return name
        return ""

    def announces(self, evening: date) -> bool:
        return evening.weekday() in self.evenings and not self.holiday(evening)

    def release(self, evening: date) -> datetime:
        return datetime.combine(evening, self.at, ZoneInfo(self.zone))


# arXiv: info.arxiv.org/help/availability (the schedule; its holiday list changes yearly,
# these are the US holidays it has kept).
CALENDARS = (
    Calendar("arXiv", ("arxiv.org",), "America/New_York", frozenset({6, 0, 1, 2, 3}), time(20),
             (("New Year's Day", 1, 1, 0), ("Martin Luther King Jr. Day", 1, 0, 3),
              ("Juneteenth", 6, 19, 0), ("Independence Day", 7, 4, 0), ("Labor Day", 9, 0, 1),
              ("Thanksgiving", 11, 3, 4), ("Christmas", 12, 25, 0))),
)


def calendar_of(url: str) -> Calendar | None:
    """The calendar of the source a feed URL belongs to, if it has one."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    return next((c for c in CALENDARS if any(host == h or host.endswith("." + h)
                                             for h in c.hosts)), None)


def quiet_day(cal: Calendar, now: datetime) -> str:
    """'arXiv: no announcement today (Saturday)' when the last announcement evening before
    `now` had none, else ''."""
    local = now.astimezone(ZoneInfo(cal.zone))
    evening = local.date() - timedelta(days=0 if local.time() >= cal.at else 1)
    if cal.announces(evening):
        return ""
    why = cal.holiday(evening) or local.strftime("%A")
    return f"{cal.source}: no announcement today ({why})"


def stalled(cal: Calendar, label: str, last_new: datetime | None, checked: datetime | None,
            now: datetime) -> str:
    """'arXiv cs.LG: nothing new since Tuesday — the feed may be stalled' when an
    announcement passed (with GRACE) between the feed's newest entry and its last successful
    poll; else ''. A feed never polled, or that never had an entry, is not judged."""
    if last_new is None or checked is None or checked <= last_new:
        return ""
    zone = ZoneInfo(cal.zone)
    day = last_new.astimezone(zone).date() - timedelta(days=1)
    end = checked.astimezone(zone).date()
    while day <= end:
        if cal.announces(day) and last_new < cal.release(day) <= checked - GRACE:
            since = last_new.astimezone(now.tzinfo or zone)
            when = since.strftime("%A") if (now - last_new).days < 6 else f"{since.day} {since:%b}"
            return f"{label}: nothing new since {when} — the feed may be stalled"
        day += timedelta(days=1)
    return ""
