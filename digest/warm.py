"""Embeddings worked out ahead of the send (the semantic extra). After a poll brings new
entries, what the next ranking will embed is embedded and cached now: the entries in the
readers' windows, their library papers and 👍 items, and, when some reader has one to three of
those, the entries' sentences; a library new since the last poll is parsed and tokenized here
too (its cache). Otherwise the first send after a poll, or after a reader brings
a library of thousands of papers, embeds them while every reader's digest waits (minutes for
a large library: `benchmarks/bench_rank.py --semantic` prints the rate)."""

from __future__ import annotations

from datetime import datetime

from digest import semantic
from digest.dates import digest_window
from digest.rank.scoring import SENTENCE_PAPERS
from digest.rank.seeds import entry_text, readable_library
from digest.settings import Config, UserConfig
from digest.store import Store


def warm(config: Config, store: Store, now: datetime) -> int:
    """Embed what the readers' next rankings will ask for and is not cached yet; how many
    texts that was (0, at once, without the semantic extra or with nothing new)."""
    r = config.ranking
    users = list(config.users.values())
    # Not resolve_mode: semantic_mode = "on" without the extra is the send's error to report.
    if not users or r.semantic <= 0 or r.semantic_mode == "off" or not semantic.available():
        return 0
    last = store.last_delivered()
    since = min(digest_window(r.lookback, u, None, now, last.get(u.name))[0] for u in users)
    entries = [entry_text(e) for e in store.entries_for_ranking(since=since)]
    # Parsed and tokenized here too, and cached, so the send finds them ready.
    libraries = {p: readable_library(store, p).texts for p in {u.papers for u in users if u.papers}}
    votes = store.has_votes()  # most installations have none: skip a query per reader
    seeds = [(libraries[u.papers] if u.papers else []) + (_liked(store, u) if votes else [])
             for u in users]
    texts = entries + [t for s in seeds for t in s]
    if any(0 < len(s) <= SENTENCE_PAPERS for s in seeds):  # scoring._by_sentence
        small = [t for s in seeds if 0 < len(s) <= SENTENCE_PAPERS for t in s]
        texts += [x for t in entries + small for x in semantic.sentences(t)]
    return semantic.Embedder(store).cache(texts)


def _liked(store: Store, user: UserConfig) -> list[str]:
    """The texts of the reader's 👍 entries: after their library papers, the ranker's seeds."""
    liked = sorted(i for i, v in store.votes(user.name).items() if v > 0)
    return [entry_text(e) for e in store.entries_for_ranking(ids=liked)] if liked else []
