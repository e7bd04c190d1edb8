"""What goes into each reader's digest for a day: ranked items plus the health of the feeds.
Shared by `digest render`, the preview server and delivery, so all three show the same thing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from digest import semantic
from digest.config import Config, UserConfig
from digest.models import Ranked
from digest.rank import Selection, build_ranker, digest_window, parse_day
from digest.store import Store


@dataclass
class FeedHealth:
    feeds: int
    new_entries: int  # in the reader's window, from their feeds
    failing: list[tuple[str, str]] = field(default_factory=list)  # (feed, failing since, ISO)


@dataclass
class Digest:
    user: UserConfig
    day: date  # the reader's local date
    since: datetime | None
    until: datetime
    items: list[Ranked]
    trending: list[Ranked]
    health: FeedHealth
    labels: dict[str, str] = field(default_factory=dict)  # feed → display name
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """What was in it, by entry id: enough to show it again exactly (Digest.recall)."""
        return json.dumps({
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "items": [[r.id, r.score, r.reasons] for r in self.items],
            "trending": [[r.id, r.score, r.reasons] for r in self.trending],
            "health": [self.health.feeds, self.health.new_entries, self.health.failing],
            "warnings": self.warnings}, ensure_ascii=False)

    @classmethod
    def recall(cls, store: Store, user: UserConfig, day: date, data: str,
               labels: dict[str, str]) -> Digest:
        """A digest as it was sent, from to_json. Entries pruned since are left out."""
        d = json.loads(data)
        ids = [i for i, _, _ in d["items"] + d["trending"]]
        entries = {e["id"]: e for e in store.entries_for_ranking(ids=ids)} if ids else {}

        def ranked(picks: list, trending: bool) -> list[Ranked]:
            return [Ranked.of(entries[i], score, reasons, trending)
                    for i, score, reasons in picks if i in entries]

        feeds, new_entries, failing = d["health"]
        return cls(user=user, day=day,
                   since=datetime.fromisoformat(d["since"]) if d["since"] else None,
                   until=datetime.fromisoformat(d["until"]), items=ranked(d["items"], False),
                   trending=ranked(d["trending"], True),
                   health=FeedHealth(feeds, new_entries, [tuple(f) for f in failing]),
                   labels=labels, warnings=d["warnings"])


def local_day(user: UserConfig, day: str | None, now: datetime) -> date:
    if day:
        return parse_day(day)
    return now.astimezone(ZoneInfo(user.timezone)).date()


def compose(config: Config, store: Store, users: list[UserConfig], day: str | None,
            now: datetime, last_sent: dict[str, datetime] | None = None) -> Iterator[Digest]:
    """One Digest per reader, in order. A digest already sent is shown as it was sent (from
    the ledger); the others are ranked now, with one model for all of them over the widest of
    their windows. `last_sent` (reader → time) starts a window at the previous digest instead
    of `lookback` ago."""
    if not users:
        return
    store.sync_feeds({n: f.location for n, f in config.feeds.items()})
    states = {s.name: s for s in store.feed_states() if s.name in config.feeds}
    labels = {n: f.title or states[n].title or n for n, f in config.feeds.items()}
    days = {u.name: local_day(u, day, now) for u in users}
    contents = store.sent_contents([d.isoformat() for d in days.values()])  # one query
    sent = {u.name: (days[u.name], contents[u.name, days[u.name].isoformat()]) for u in users
            if (u.name, days[u.name].isoformat()) in contents}
    fresh = _ranked_now(config, store, [u for u in users if u.name not in sent], day, now,
                        last_sent or {}, states, labels)
    for u in users:  # in the given order
        yield Digest.recall(store, u, *sent[u.name], labels) if u.name in sent else next(fresh)


def _ranked_now(config: Config, store: Store, users: list[UserConfig], day: str | None,
                now: datetime, last_sent: dict[str, datetime], states: dict,
                labels: dict[str, str]) -> Iterator[Digest]:
    if not users:
        return
    windows = {u.name: digest_window(config, u, day, now, last_sent.get(u.name)) for u in users}
    starts = [since for since, _ in windows.values()]
    earliest = None if any(s is None for s in starts) else min(starts)
    ranker = build_ranker(config, store, now, earliest,
                          semantic.resolve_mode(config.ranking.semantic_mode))
    jobs = []
    for u in users:
        since, until = windows[u.name]
        jobs.append((u, ranker.rows_for(u, since, until)))
    r = config.ranking
    ranked_all = ranker.rank_many(jobs, workers=r.workers,
                                 selection=Selection(None, r.min_score, r.trending))
    for (u, rows), (_, ranked) in zip(jobs, ranked_all, strict=True):
        since, until = windows[u.name]
        feeds = set(u.feeds) if u.feeds else set(config.feeds)
        failing = sorted((n, s.failing_since) for n, s in states.items()
                         if n in feeds and s.active and s.error_count)
        items = [x for x in ranked if not x.trending]
        yield Digest(user=u, day=local_day(u, day, now), since=since, until=until, items=items,
                     trending=[x for x in ranked if x.trending],
                     health=FeedHealth(feeds=len(feeds), new_entries=len(rows), failing=failing),
                     labels=labels,
                     warnings=[w for p, ws in ranker.library_warnings.items()
                               if p == u.papers for w in ws])
