"""What is worked out once per entry from its text and stored with it, so that a ranking
reads arrays back instead of working it out again: its words as term ids (TF-IDF and phrase
matching, `entries.analysis`) and its abstract's sentences (the highlight, `entries.sentences`).

A ranking works out what it finds missing (pool.py). The step after a poll (warm.py) works it
out for the new entries first: otherwise every send is the first ranking of the day's new
entries and pays for it while the readers' digests wait (benchmarks/bench_rank.py).
Not while entries are stored, between fetches: it would slow polling by ~40 %
(benchmarks/bench_poll.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np

from digest import sentences
from digest.lexical import analyze_entry, decode_analysis, encode_analysis
from digest.models import StoredEntry
from digest.store import Store

# Entries worked out and stored per transaction by prepare(): a run stopped halfway keeps
# what it did, and the write lock is held briefly. Not fitted.
CHUNK = 1000

Analysis = tuple[np.ndarray, np.ndarray, np.ndarray]  # lexical.decode_analysis
TermIds = Callable[[Iterable[str]], Mapping[str, int]]  # stems → term ids, adding new ones


class Analysed(NamedTuple):
    analyses: list[Analysis]  # per entry, decoded
    new_words: dict[str, int]  # the term ids of the words analysed here
    computed: int  # how many entries had none stored


def analysed(store: Store, entries: list[StoredEntry]) -> Analysed:
    """Each entry's analysis: read back, or worked out, set on the entry and stored."""
    analyses = [decode_analysis(e.analysis) for e in entries]
    todo = [k for k, a in enumerate(analyses) if a is None]
    if not todo:
        return Analysed(analyses, {}, 0)
    parts = {k: analyze_entry(entries[k].title, entries[k].summary_text) for k in todo}
    ids = store.term_ids({w for p in parts.values() for ws in p for w in ws})
    computed = []
    for k, p in parts.items():
        entries[k].analysis = encode_analysis(p, ids)
        analyses[k] = decode_analysis(entries[k].analysis)
        computed.append((entries[k].id, entries[k].analysis))
    store.save_analysis(computed)
    return Analysed(analyses, ids, len(todo))


def split_abstracts(entries: list[StoredEntry], ids: TermIds) -> list[tuple[str, bytes]]:
    """The entries' abstracts split into sentences and encoded, their stems' term ids from
    `ids`; set on each entry, and returned as (entry id, value) for Store.save_sentences."""
    said = [sentences.analyze(e.summary_text) for e in entries]
    known = ids({w for p in said for ws in p.stems for w in ws})
    out = []
    for e, parsed in zip(entries, said, strict=True):
        e.sentences = sentences.encode(parsed, known)
        out.append((e.id, e.sentences))
    return out


def prepare(store: Store, entries: list[StoredEntry]) -> tuple[int, int]:
    """Both, for those of `entries` missing either, stored CHUNK entries at a time: (entries
    analysed, abstracts split)."""
    analysed_n = split_n = 0
    for i in range(0, len(entries), CHUNK):
        chunk = entries[i:i + CHUNK]
        analysed_n += analysed(store, chunk).computed
        unsplit = [e for e in chunk if sentences.decode(e.sentences) is None]
        if unsplit:
            store.save_sentences(split_abstracts(unsplit, store.term_ids))
            split_n += len(unsplit)
    return analysed_n, split_n
