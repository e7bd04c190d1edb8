"""What goes into each reader's digest for a day: ranked items plus the health of the feeds.
Shared by `digest render`, the preview server and delivery (through daily.py), so all three
show the same thing. Reads only; the ranker may fill its caches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from digest import semantic
from digest.dates import digest_day, digest_window
from digest.health import calendar_notes, failing_feeds, feed_states
from digest.models import Digest, FeedHealth, Highlight, Ranked, iso_utc
from digest.rank import Selection, build_ranker
from digest.settings import Config, UserConfig
from digest.store import Store
from digest.updates import updated_items


def recall(store: Store, user: UserConfig, day: date, data: str,
           labels: dict[str, str]) -> Digest:
    """A digest as it was sent, from Digest.to_json. Entries pruned since are left out."""
    d = json.loads(data)
    ids = [p[0] for p in d["items"] + d["trending"] + d.get("updated", [])]
    entries = {e.id: e for e in store.entries_for_ranking(ids=ids)} if ids else {}

    def ranked(picks: list, trending: bool) -> list[Ranked]:
        out = []
        for i, score, reasons, *more in picks:  # digests of older versions lack `more`
            if i in entries:
                extra = more[0] if more else {}
                text, marks = extra.get("highlight") or ("", [])
                out.append(Ranked.of(entries[i], score, reasons, trending, extra.get("section", ""),
                                     Highlight(text, tuple(map(tuple, marks))) if text else None))
        return out

    feeds, new_entries, failing, *notes = d["health"]
    return Digest(user=user, day=day,
                  since=datetime.fromisoformat(d["since"]) if d["since"] else None,
                  until=datetime.fromisoformat(d["until"]), items=ranked(d["items"], False),
                  trending=ranked(d["trending"], True),
                  health=FeedHealth(feeds, new_entries, [tuple(f) for f in failing],
                                    notes[0] if notes else []),
                  labels=labels, warnings=d["warnings"],
                  updated=ranked(d.get("updated", []), False))


def compose(config: Config, store: Store, users: list[UserConfig], day: date | None,
            now: datetime, last_sent: dict[str, datetime] | None = None) -> Iterator[Digest]:
    """One Digest per reader, in order, of local date `day` (None: each reader's today, up
    to now). A digest already sent is shown as it was sent (from the ledger); the others are
    ranked now, with one model for all of them over the widest of their windows. `last_sent`
    (reader → time) starts a window at the previous digest instead of `lookback` ago."""
    if not users:
        return
    states = feed_states(config, store)
    labels = {n: f.title or states[n].title or n for n, f in config.feeds.items()}
    days = {u.name: digest_day(u, day, now) for u in users}
    contents = store.sent_contents([d.isoformat() for d in days.values()])  # one query
    sent = {u.name: contents[u.name, days[u.name].isoformat()] for u in users
            if (u.name, days[u.name].isoformat()) in contents}
    fresh = _ranked_now(config, store, [u for u in users if u.name not in sent], day, now,
                        last_sent or {}, states, labels)
    for u in users:  # in the given order
        yield (recall(store, u, days[u.name], sent[u.name], labels) if u.name in sent
               else next(fresh))


def _ranked_now(config: Config, store: Store, users: list[UserConfig], day: date | None,
                now: datetime, last_sent: dict[str, datetime], states: dict,
                labels: dict[str, str]) -> Iterator[Digest]:
    if not users:
        return
    windows = {u.name: digest_window(config.ranking.lookback, u, day, now,
                                     last_sent.get(u.name)) for u in users}
    starts = [since for since, _ in windows.values()]
    earliest = None if any(s is None for s in starts) else min(starts)
    ranker = build_ranker(config, store, now, earliest,
                          semantic.resolve_mode(config.ranking.semantic_mode))
    jobs = [(u, ranker.rows_for(u, *windows[u.name])) for u in users]
    r = config.ranking
    ranked_all = ranker.rank_many(jobs, workers=r.workers,
                                  selection=Selection(None, r.min_score, r.trending))
    revised = store.revised(earliest, max(until for _, until in windows.values()))
    newest = store.newest_sightings()
    for (u, rows), (_, ranked) in zip(jobs, ranked_all, strict=True):
        since, until = windows[u.name]
        feeds = set(u.feeds) if u.feeds else set(config.feeds)
        yield Digest(user=u, day=digest_day(u, day, now), since=since, until=until,
                     items=[x for x in ranked if not x.trending],
                     trending=[x for x in ranked if x.trending],
                     health=FeedHealth(feeds=len(feeds), new_entries=len(rows),
                                       failing=failing_feeds(states, feeds),
                                       notes=calendar_notes(config, states, newest,
                                                            sorted(feeds), until, labels)),
                     labels=labels,
                     warnings=_as_reader_sees(ranker.library_warnings.get(u.papers, []),
                                              u.papers),
                     updated=_updated(store, u, revised, since, until, ranked))


def _as_reader_sees(warnings: list[str], path: Path | None) -> list[str]:
    """A library's warnings for its reader's footer: the file by its name, not by where it
    lives on the server (`digest check` and `digest rank` show the operator the whole path)."""
    if path is None:
        return []
    where = str(path)
    return [path.name + w[len(where):] if w.startswith(where) else w for w in warnings]


def _updated(store: Store, user: UserConfig, revised: list[tuple[str, str]],
             since: datetime | None, until: datetime, ranked: list[Ranked]) -> list[Ranked]:
    """The reader's Updated section (updates.py): of the entries `revised` (Store.revised),
    those revised in their window (since, until] and not among the `ranked` items."""
    if not user.updates:
        return []
    lo, hi, shown = iso_utc(since) if since else "", iso_utc(until), {x.id for x in ranked}
    ids = [i for i, at in revised if lo < at <= hi and i not in shown]
    if not ids:
        return []
    first_sent, told = store.sent_items(user.name, ids)
    return updated_items(store.entries_for_ranking(ids=ids), store.liked_versions(user.name, ids),
                         first_sent, told, store.mutes(user.name))


def ranking(config: Config, store: Store, user: UserConfig, day: date | None, now: datetime,
            everything: bool = False, limit: int | None = None) -> tuple[list[Ranked], list[str]]:
    """What `digest rank` shows: the reader's digest as it would be ranked now (their window,
    floor and limit, then its Updated section), or with `everything` every stored entry of
    their feeds, best first. Returns (ranked, the library's warnings)."""
    last = store.last_delivered().get(user.name)
    since, until = ((None, None) if everything
                    else digest_window(config.ranking.lookback, user, day, now, last))
    ranker = build_ranker(config, store, now, since,
                          semantic.resolve_mode(config.ranking.semantic_mode))
    rows = ranker.rows_for(user, since, until)
    if everything:
        ranked = ranker.rank(user, rows, limit=limit)
    else:
        r = config.ranking
        ranked = ranker.digest(user, rows, Selection(limit or user.max_items, r.min_score,
                                                     r.trending))
        ranked += _updated(store, user, store.revised(since, until), since, until, ranked)
    return ranked, [w for ws in ranker.library_warnings.values() for w in ws]
