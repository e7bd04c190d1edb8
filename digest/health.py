"""Feed and reader health, built once for `digest check`, `digest feeds`, the preview's
health page and each email's footer. Read-only: the feeds table follows the config only when
`poll` writes it (sync_feeds); a view shows a feed the config added or moved as poll will
make it, from the same rule (feed_states)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from digest.calendar import calendar_of, quiet_day, stalled
from digest.ledger import EMAIL, FAILED, lost_report
from digest.models import FeedState, ReaderState
from digest.settings import Config
from digest.store import Store


def sync_feeds(config: Config, store: Store) -> None:
    """Make the feeds table follow the config (poll's first step: the one writer)."""
    stored = {s.name: s for s in store.feed_states()}
    store.save_feed_states([s for name, s in feed_states(config, store, stored).items()
                            if stored.get(name) != s])


def feed_states(config: Config, store: Store,
                stored: dict[str, FeedState] | None = None) -> dict[str, FeedState]:
    """Each configured feed's state, in config order, as the config makes it: what sync_feeds
    writes and what every view shows, without writing."""
    if stored is None:
        stored = {s.name: s for s in store.feed_states()}
    return {name: _following(stored.get(name), name, feed.location)
            for name, feed in config.feeds.items()}


def _following(state: FeedState | None, name: str, location: str) -> FeedState:
    if state is None:
        return FeedState(name=name, url=location, config_url=location)
    if state.config_url == location:
        return state
    # A changed configured address is a different feed: its fetch state starts over (its title,
    # last success and URL history stay for the operator).
    return replace(state, url=location, config_url=location, etag="", last_modified="",
                   active=True, error_count=0, last_error="", failing_since="",
                   next_poll_at="", redirect_to="", redirect_seen=0)


def failing_feeds(states: dict[str, FeedState], feeds: set[str]) -> list[tuple[str, str]]:
    """(feed, failing since) of the failing feeds among `feeds`, by name."""
    return sorted((n, s.failing_since) for n, s in states.items()
                  if n in feeds and s.active and s.error_count)


def calendar_notes(config: Config, states: dict[str, FeedState], newest: dict[str, str],
                   feeds, now: datetime, labels: dict[str, str] | None = None) -> list[str]:
    """What the sources' calendars say about `feeds` at `now` (calendar.py): a source's quiet
    day once, then each of its feeds that missed an announcement. `newest` is
    Store.newest_sightings()."""
    quiet, stuck = [], []
    for name in feeds:
        feed = config.feeds.get(name)
        cal = calendar_of(feed.location) if feed and feed.url else None
        if cal is None:
            continue
        day = quiet_day(cal, now)
        if day and day not in quiet:
            quiet.append(day)
        s = states.get(name)
        label = (labels or {}).get(name) or feed.title or (s.title if s else "") or name
        note = stalled(cal, label, _time(newest.get(name, "")),
                       _time(s.last_success_at) if s and not s.error_count else None, now)
        if note:
            stuck.append(note)
    return quiet + stuck


def _time(iso: str) -> datetime | None:
    try:
        return datetime.fromisoformat(iso) if iso else None
    except ValueError:
        return None


HISTORY_DAYS = 30  # the health page's per-day chart


@dataclass
class FeedRow:
    name: str
    title: str
    state: str  # ok | failing | gone | new
    entries: int
    last_success: str
    errors: int
    failing_since: str
    last_error: str
    next_poll: str  # "" for now; "never" once gone
    location: str  # as configured
    url: str  # as fetched, after permanent redirects
    moved: str  # "moved from URL on DATE", or ""
    note: str = ""  # its source's calendar: a quiet day, or a stall (calendar.py)
    days: list[int] = field(default_factory=list)  # new entries per day, oldest first


@dataclass
class Health:
    feeds: list[FeedRow]
    readers: list[ReaderState]  # configured readers whose address is refused
    lost: list[str]  # one sentence per digest that may not have arrived
    channels: list  # failed chat-channel deliveries (ledger rows)


def health(config: Config, store: Store, now: datetime) -> Health:
    states = feed_states(config, store)
    totals = store.feed_totals()
    newest = store.newest_sightings()
    first = (now - timedelta(days=HISTORY_DAYS - 1)).date()
    per_day = store.sightings_per_day(datetime.combine(first, datetime.min.time(), now.tzinfo))
    dates = [(first + timedelta(days=k)).isoformat() for k in range(HISTORY_DAYS)]
    rows = []
    for name, feed in config.feeds.items():
        s = states[name]
        changes = json.loads(s.url_changes or "[]")
        moved = (f"moved from {changes[-1]['from']} on {changes[-1]['at'][:10]}"
                 if changes else "")
        counts = per_day.get(name, {})
        rows.append(FeedRow(name, feed.title or s.title or name, s.health, totals.get(name, 0),
                            s.last_success_at, s.error_count, s.failing_since, s.last_error,
                            s.next_poll_at if s.active else "never", feed.location, s.url,
                            moved, "; ".join(calendar_notes(config, states, newest, [name], now)),
                            [counts.get(d, 0) for d in dates]))
    return Health(rows, failing_readers(config, store),
                  [lost_report(r) for r in store.lost_deliveries(now)],
                  [r for r in store.deliveries_in((FAILED,)) if r.channel != EMAIL])


def failing_readers(config: Config, store: Store) -> list[ReaderState]:
    """The configured readers whose mail server refuses their address."""
    return [r for name, r in store.reader_states().items()
            if r.failing_since and name in config.users]


def reader_trouble(r: ReaderState) -> str:
    return f"reader {r.name} is failing since {r.failing_since}: {r.last_error}"
