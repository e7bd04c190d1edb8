"""The one sentence of an abstract that is about the reader: extractive, no language model.

A sentence is scored by what the reader follows, strongest first: their phrases, then the
seed paper named in the item's reasons, then their library as a whole; the best sentence is
shown instead of the abstract's opening, with the words that matched marked. Nothing
matching, the first sentence. The ranker highlights the items it picks, one reader's at a
time (benchmarks/bench_render.py measures the cost per item); an abstract's sentences come
split and stemmed from the database (sentences.py), and a seed paper's words from its
library's cache (rank/seeds.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from digest import lexical, sentences
from digest.models import Highlight
from digest.sentences import WORD as _WORD
from digest.sentences import Sentences


@dataclass(frozen=True)
class Profile:
    """What one reader's sentences are matched against, as words: highlight()'s input."""

    phrases: tuple[tuple[str, ...], ...] = ()  # each phrase as its words' stems
    library: frozenset[str] = frozenset()  # content-word stems of the library's titles

    @classmethod
    def of(cls, phrases, library_titles) -> Profile:
        return cls(phrases=phrase_stems(phrases),
                   library=frozenset().union(*map(_title_words, library_titles)))


@dataclass(frozen=True)
class Marks:
    """What one reader's sentences are matched against, as the ranker has it: their phrases
    (stems: readers share phrases, whose ids are looked up once a ranking), and as term ids the
    words of their library's titles and of each seed paper (kept in the library's cache,
    seeds.py, so no library paper is stemmed again at each ranking; a 👍 entry's are worked
    out at each)."""

    phrases: tuple[tuple[str, ...], ...]
    library: np.ndarray  # the titles' distinct content words
    words: np.ndarray  # each seed paper's distinct content words, paper after paper
    starts: np.ndarray  # where each paper's words begin in `words`, then where they end

    def seed(self, k: int) -> np.ndarray:
        return self.words[self.starts[k]:self.starts[k + 1]]


def paper_words(title: str, text: str) -> tuple[list[str], list[str]]:
    """A seed paper's distinct content stems (seed_words) as the highlight matches them: its
    title's (_title_words, sorted), then the rest (sorted)."""
    titled = _title_words(title)
    return sorted(titled), sorted(seed_words(title, text) - titled)


def phrase_stems(phrases: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(p for p in (tuple(_stems(x)) for x in phrases) if p)


def highlight(abstract: str, profile: Profile, seed: frozenset[str] = frozenset()) -> Highlight:
    """The sentence of `abstract` best matching the profile (phrases, then the seed paper's
    words, then the library's), with its matched words; the first sentence when none match."""
    vocabulary: dict[str, int] = {}

    def ids(stems: Iterable[str], add: bool) -> dict[str, int]:
        return {s: vocabulary.setdefault(s, len(vocabulary)) for s in stems}

    doc = sentences.one(abstract, lambda stems: ids(stems, True))
    highlighter = Highlighter(ids)
    return highlighter.many(highlighter.marks(profile, [seed]),
                            [(doc if doc.n else None, 0 if seed else None)])[0]


class Highlighter:
    """Highlights for one ranking, one reader's items at a time, matched all at once as arrays
    over word ids (a few numpy operations a reader, not a Python loop over every sentence of
    every item). A sentence's key is, strongest first, how many times the reader's phrases
    stand in it, how many distinct words of the item's seed paper it has, and how many of the
    library's; the first sentence with the highest key is shown. `lookup(stems, add)` gives
    stems' ids in the database's term dictionary (with `add`, giving new stems one); a stem a
    reader follows that has none is in no abstract."""

    CHUNK = 32  # items matched at once: a bit per distinct seed paper, and one for the library

    def __init__(self, lookup: Callable[[list[str], bool], Mapping[str, int]]) -> None:
        self._lookup = lookup  # (stems, add) → ids; with add, stems without one get one
        self._ids: dict[str, int] = {}  # stem → id, or -1 for none (yet)
        self._bits = np.zeros(0, dtype=np.uint64)  # per id, the rows wanting it; zeroed after use

    def know(self, ids: Mapping[str, int]) -> None:
        """Term ids already looked up (the new entries' words, when the pool analysed them):
        their abstracts' stems are then mostly known without asking the database."""
        self._ids.update(ids)

    def ids(self, stems: Iterable[str], add: bool = True) -> dict[str, int]:
        """Term ids of stems, through this ranking's cache; with `add`, those without one
        are given one (an abstract's words), else they are -1 (a reader's: in no abstract)."""
        stems = set(stems)
        have = self._ids
        missing = [s for s in stems if have.get(s, -1) < 0] if add else [s for s in stems if s not in have]
        if missing:
            found = self._lookup(missing, add)
            have.update({s: found.get(s, -1) for s in missing})
        return {s: have[s] for s in stems}

    def marks(self, profile: Profile, seeds: list[frozenset[str]]) -> Marks:
        """A profile and seed papers' words (stems) as many() takes them."""
        words = [self._as_ids(s) for s in seeds]
        return Marks(profile.phrases, self._as_ids(profile.library),
                     np.concatenate([np.zeros(0, np.int64), *words]),
                     np.cumsum([0, *map(len, words)]))

    def many(self, marks: Marks, cases: list[tuple[Sentences | None, int | None]]) -> list[Highlight]:
        """highlight() of each (abstract's sentences, its seed paper: an index of
        `marks.seed`, or None) for one reader."""
        phrases = [self._as_ids(p, keep=True) for p in marks.phrases]
        phrases = [p for p in phrases if (p >= 0).all()]  # a word in no abstract: never stands
        out: list[Highlight] = []
        for i in range(0, len(cases), self.CHUNK):
            out += self._chunk(marks, phrases, cases[i:i + self.CHUNK])
        return out

    def _chunk(self, marks: Marks, phrases: list[np.ndarray],
               cases: list[tuple[Sentences | None, int | None]]) -> list[Highlight]:
        out = [Highlight("")] * len(cases)
        live = [j for j, (doc, _) in enumerate(cases) if doc is not None]
        if not live:
            return out
        docs = [cases[j][0] for j in live]
        # Bit 0 of an id: a word of the library; bit r: of the r-th seed paper in these items.
        rows: dict[int, int] = {}
        row = [63 if cases[j][1] is None else rows.setdefault(cases[j][1], len(rows) + 1)
               for j in live]  # bit 63 is never set
        wanted = [(0, marks.library)] + [(r, marks.seed(k)) for k, r in rows.items()]
        uniq = np.concatenate([d.uniq for d in docs])  # each sentence's distinct words
        top_id = max(int(uniq.max(initial=0)),
                     max((int(ids.max()) for _, ids in wanted if len(ids)), default=0))
        if len(self._bits) <= top_id:
            self._bits = np.zeros(top_id + top_id // 4 + 64, dtype=np.uint64)  # room to grow
        bits = self._bits
        for r, ids in wanted:
            bits[ids] |= np.uint64(1 << r)
        try:
            # Per sentence of all the items: its distinct words that are the seed's, the library's.
            counted = np.concatenate([d.counts for d in docs])
            where = np.repeat(np.arange(len(counted)), counted)
            got = bits[uniq]
            shift = np.repeat(np.asarray(row, dtype=np.uint64), [len(d.uniq) for d in docs])
            seed = np.bincount(where, (got >> shift) & np.uint64(1), len(counted)).astype(np.int64)
            library_n = np.bincount(where, got & np.uint64(1), len(counted)).astype(np.int64)
            phrase, runs = _phrases(phrases, docs)
            key = (phrase << 40) + (seed << 20) + library_n
            first = np.cumsum([0] + [d.n for d in docs])  # each item's first sentence, of all
            top = np.maximum.reduceat(key, first[:-1])
            hits = np.flatnonzero(key == np.repeat(top, np.diff(first)))
            best = hits[np.searchsorted(hits, first[:-1])].tolist()  # the first at each top
            seed, library_n, first = seed.tolist(), library_n.tolist(), first.tolist()
            chosen = [(i, b - first[i]) for i, b in enumerate(best)]
            marked = [(i, k) for i, k in chosen if best[i] not in runs
                      and (seed[best[i]] or library_n[best[i]])]
            places = self._marks(bits, docs, marked, [row[i] if seed[best[i]] else 0 for i, _ in marked])
            for i, k in chosen:
                b, doc = best[i], docs[i]
                if b in runs:
                    out[live[i]] = doc.shown(k, runs[b])
                elif seed[b] or library_n[b]:
                    out[live[i]] = doc.marked(k, places[i])
                else:
                    out[live[i]] = doc.shown(k)
        finally:
            for _, ids in wanted:
                bits[ids] = 0
        return out

    @staticmethod
    def _marks(bits: np.ndarray, docs: list[Sentences], marked: list[tuple[int, int]],
               bit: list[int]) -> dict[int, list[int]]:
        """For each (item, sentence) to mark, the places of its words whose bit is set, all
        items' chosen sentences looked up at once."""
        if not marked:
            return {}
        bounds = [(docs[i].starts[k], docs[i].starts[k + 1] - 1) for i, k in marked]
        words = np.concatenate([docs[i].words[a:b] for (i, _), (a, b) in zip(marked, bounds, strict=True)])
        sizes = [b - a for a, b in bounds]
        shift = np.repeat(np.asarray(bit, dtype=np.uint64), sizes)
        hits = np.flatnonzero((bits[words] >> shift) & np.uint64(1))
        starts = np.cumsum([0, *sizes]).tolist()
        cuts = np.searchsorted(hits, starts).tolist()
        hits = hits.tolist()
        return {i: [h - starts[n] for h in hits[cuts[n]:cuts[n + 1]]]
                for n, (i, _) in enumerate(marked)}

    def _as_ids(self, stems: Iterable[str], keep: bool = False) -> np.ndarray:
        """The ids of stems that have one (with `keep`, every stem, -1 for none)."""
        stems = list(stems)
        ids = list(map(self._ids.get, stems))
        if None in ids:  # not asked for yet in this ranking
            self.ids(stems, add=False)
            ids = list(map(self._ids.__getitem__, stems))
        found = np.array(ids, dtype=np.int64)
        return found if keep else found[found >= 0]


def _phrases(phrases: list[np.ndarray], docs: list[Sentences]):
    """Per sentence of all items, how many times a phrase stands in it; and for each sentence
    with one, the runs of words (first, last place in the sentence) where they stand."""
    count = np.zeros(sum(d.n for d in docs), dtype=np.int64)
    if not phrases:
        return count, {}
    longest = max(map(len, phrases))
    words = np.concatenate([d.words for d in docs] + [np.full(longest, -1, np.int32)])
    opening = words == phrases[0][0]  # a phrase's first word (a few: not np.isin's sort)
    for p in phrases[1:]:
        opening |= words == p[0]
    maybe = np.flatnonzero(opening)
    found = []
    for ids in phrases:
        at = maybe[words[maybe] == ids[0]]
        for t in range(1, len(ids)):
            at = at[words[at + t] == ids[t]]
        if at.size:
            found.append((at, len(ids)))
    runs: dict[int, list[tuple[int, int]]] = {}
    if found:
        ends = np.flatnonzero(words == -1)  # the -1 that ends each sentence (then the padding)
        begins = np.concatenate(([0], ends[:-1] + 1))
        for at, size in found:
            sentence = np.searchsorted(ends, at)
            count += np.bincount(sentence, minlength=len(count))
            for s, a in zip(sentence.tolist(), (at - begins[sentence]).tolist(), strict=True):
                runs.setdefault(s, []).append((a, a + size - 1))
    return count, runs


def _stems(text: str) -> list[str]:
    return lexical.stems(_WORD.findall(text.lower()))


def _content(text: str) -> list[str]:
    """The stems of a text's content words: what a seed paper or library contributes."""
    return lexical.stems([w for w in _WORD.findall(text.lower())
                          if len(w) > 2 and w not in lexical.STOPWORDS])


# Cached: a library's are worked out once and stored with it (paper_words), but a 👍 entry's
# at each ranking, and readers like the same entries.
@functools.lru_cache(maxsize=16384)
def _title_words(title: str) -> frozenset[str]:
    return frozenset(_content(title))


@functools.lru_cache(maxsize=4096)
def seed_words(title: str, text: str) -> frozenset[str]:
    return frozenset(_content(title + " " + text))
