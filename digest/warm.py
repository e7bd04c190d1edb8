"""The next send's work, done after a poll that brought new entries, while no reader waits.

- The new entries' words and sentences (rank/prepare.py): otherwise every send is the first
  ranking of the day's entries and works them out while every digest waits (1,000 readers
  over 5,000 new entries: benchmarks/bench_rank.py).
- A library new since the last poll is parsed and tokenized (its cache).
- With the semantic extra, what the next ranking will embed: the entries in the readers'
  windows, their library papers and 👍 items and their titles, and, when some reader has any
  of those, the entries' sentences (rank/sentence_match.py). Otherwise the first send after a
  poll, or after a reader brings a library of thousands of papers, embeds them while every
  reader's digest waits (minutes for a large library: `benchmarks/bench_rank.py --semantic`
  prints the rate)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest import semantic
from digest.dates import digest_window
from digest.rank.prepare import prepare
from digest.rank.seeds import entry_text, readable_library
from digest.rank.sentence_match import embeds_sentences, matched
from digest.rank.tuning import DEFAULT
from digest.settings import Config, UserConfig
from digest.store import Store


@dataclass(frozen=True)
class Warmed:
    """What warm() did: each a count of what was missing and is now stored."""

    analysed: int = 0  # entries tokenized
    split: int = 0  # abstracts split into sentences
    embedded: int = 0  # texts embedded (the semantic extra; an entry's sentences count as one)

    def __str__(self) -> str:
        done = [f"{n} {what}" for n, what in ((self.analysed, "entries tokenized"),
                                                (self.split, "abstracts split into sentences"),
                                                (self.embedded, "texts embedded")) if n]
        return ", ".join(done) or "nothing to do"

    def __bool__(self) -> bool:
        return bool(self.analysed or self.split or self.embedded)


def warm(config: Config, store: Store, now: datetime) -> Warmed:
    """Work out what the readers' next rankings will ask for and is not stored yet."""
    users = list(config.users.values())
    if not users:
        return Warmed()
    r = config.ranking
    last = store.last_delivered()
    since = min(digest_window(r.lookback, u, None, now, last.get(u.name))[0] for u in users)
    entries = store.entries_for_ranking(since=since)
    analysed, split = prepare(store, entries)
    # Parsed and tokenized here, and cached, so the send finds them ready.
    libraries = {p: readable_library(store, p) for p in {u.papers for u in users if u.papers}}
    # Not resolve_mode: semantic_mode = "on" without the extra is the send's error to report.
    if r.semantic <= 0 or r.semantic_mode == "off" or not semantic.available():
        return Warmed(analysed, split)
    texts = [entry_text(e) for e in entries]
    votes = store.has_votes()  # most installations have none: skip a query per reader
    # Each reader's seeds as (title, text): library papers, then 👍 entries.
    seeds = [(list(zip(libraries[u.papers].titles, libraries[u.papers].texts, strict=True))
              if u.papers else []) + (_liked(store, u) if votes else []) for u in users]
    every = texts + [x for s in seeds for pair in s for x in pair]  # titles: sentence_match
    # The entries' sentences (sentence_match); a small library's seeds' one by one (by_sentence).
    every += [x for s in seeds if matched(len(s)) for _, t in s for x in semantic.sentences(t)]
    parted = texts if any(embeds_sentences(len(s), DEFAULT) for s in seeds) else []
    return Warmed(analysed, split, semantic.Embedder(store).cache(every, parted))


def _liked(store: Store, user: UserConfig) -> list[tuple[str, str]]:
    """The (title, text) of the reader's 👍 entries: after their library papers, the ranker's
    seeds."""
    liked = sorted(i for i, v in store.votes(user.name).items() if v > 0)
    return [(e.title, entry_text(e)) for e in store.entries_for_ranking(ids=liked)] if liked else []
