"""Feed and reader health, built once for `digest check`, `digest feeds`, the preview's
health page and each email's footer. Read-only: the feeds table follows the config only when
`poll` writes it (sync_feeds); a view shows a feed the config changed as it will be, new."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from digest.ledger import EMAIL, FAILED, lost_report
from digest.models import FeedState, ReaderState
from digest.settings import Config
from digest.store import Store


def sync_feeds(config: Config, store: Store) -> None:
    """Make the feeds table match the config (poll's first step: the one writer)."""
    store.sync_feeds({n: f.location for n, f in config.feeds.items()})


def feed_states(config: Config, store: Store) -> dict[str, FeedState]:
    """Each configured feed's state, in config order. A feed not polled since it was added,
    or whose configured address changed, is new: what sync_feeds will make it."""
    stored = {s.name: s for s in store.feed_states()}
    out = {}
    for name, feed in config.feeds.items():
        s = stored.get(name)
        out[name] = s if s is not None and s.config_url == feed.location else FeedState(
            name=name, url=feed.location, config_url=feed.location)
    return out


def failing_feeds(states: dict[str, FeedState], feeds: set[str]) -> list[tuple[str, str]]:
    """(feed, failing since) of the failing feeds among `feeds`, by name."""
    return sorted((n, s.failing_since) for n, s in states.items()
                  if n in feeds and s.active and s.error_count)


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


@dataclass
class Health:
    feeds: list[FeedRow]
    readers: list[ReaderState]  # configured readers whose address is refused
    lost: list[str]  # one sentence per digest that may not have arrived
    channels: list  # failed chat-channel deliveries (ledger rows)


def health(config: Config, store: Store, now: datetime) -> Health:
    states = feed_states(config, store)
    totals = store.feed_totals()
    rows = []
    for name, feed in config.feeds.items():
        s = states[name]
        changes = json.loads(s.url_changes or "[]")
        moved = (f"moved from {changes[-1]['from']} on {changes[-1]['at'][:10]}"
                 if changes else "")
        rows.append(FeedRow(name, feed.title or s.title or name, s.health, totals.get(name, 0),
                            s.last_success_at, s.error_count, s.failing_since, s.last_error,
                            s.next_poll_at if s.active else "never", feed.location, s.url,
                            moved))
    return Health(rows, failing_readers(config, store),
                  [lost_report(r) for r in store.lost_deliveries(now)],
                  [r for r in store.deliveries_in((FAILED,)) if r.channel != EMAIL])


def failing_readers(config: Config, store: Store) -> list[ReaderState]:
    """The configured readers whose mail server refuses their address."""
    return [r for name, r in store.reader_states().items()
            if r.failing_since and name in config.users]


def reader_trouble(r: ReaderState) -> str:
    return f"reader {r.name} is failing since {r.failing_since}: {r.last_error}"
