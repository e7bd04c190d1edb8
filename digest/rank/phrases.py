"""Where interest phrases occur in a pool: in the title, in the abstract, or only scattered."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from digest.lexical import distinct

APART, IN_ABSTRACT, IN_TITLE = 1, 2, 3  # where a phrase occurs in an entry (0: not all words)


class PhraseIndex:
    """Where phrases occur, without scanning every entry per phrase. Each field (title,
    abstract) of the pool is one array of word ids; postings (sorted entry arrays) of words and
    of adjacent word pairs are cut from it with numpy for all the phrases known at once (and
    again when a new phrase needs more). Words alone find the entries holding all of a phrase's
    words; pairs find those where they stand together."""

    def __init__(self, title_words: list[np.ndarray], body_words: list[np.ndarray]):
        self.n = len(title_words)
        self.fields = []
        for docs in (title_words, body_words):
            sizes = np.fromiter(map(len, docs), dtype=np.int64, count=self.n)
            flat = np.concatenate(docs).astype(np.int64) if self.n else np.zeros(0, np.int64)
            doc = np.repeat(np.arange(self.n, dtype=np.int64), sizes)
            same = doc[:-1] == doc[1:]  # adjacent words of one entry form a pair
            pairs = flat[:-1][same] << 32 | flat[1:][same]
            self.fields.append((flat, doc, pairs, doc[:-1][same],
                                np.concatenate([[0], np.cumsum(sizes)])))
        self.size = int(max((f[0].max() for f in self.fields if len(f[0])), default=0)) + 1
        self.words: tuple[dict, dict, dict] = ({}, {}, {})  # title, abstract, either: word → entries
        self.pairs: tuple[dict, dict] = ({}, {})  # per field: pair code → entries
        self.indexed: set[tuple[int, ...]] = set()

    def index(self, phrases: set[tuple[int, ...]]) -> None:
        phrases = phrases - self.indexed
        if not phrases:
            return
        self.indexed |= phrases
        new = np.asarray(sorted({w for p in phrases for w in p} - self.words[2].keys()), np.int64)
        if len(new):
            # Each wanted word's index in `new`, by word id (-1: not wanted): one lookup per
            # word of the pool instead of a binary search.
            index = np.full(self.size, -1, np.int64)
            known = (new >= 0) & (new < self.size)  # -1: a word in no entry
            index[new[known]] = np.flatnonzero(known)
            found = []
            for flat, doc, *_ in self.fields:
                k = index[flat]
                at = np.flatnonzero(k >= 0)
                found.append(distinct(k[at] * self.n + doc[at]))
            # Either field: the two sorted postings merged (a stable sort merges sorted runs).
            either = distinct(np.concatenate(found), kind="stable")
            for words_, keys in zip(self.words, [*found, either], strict=True):
                words_.update(_split(keys, new, self.n))
        for (_, _, pairs, pair_doc, _), pairs_ in zip(self.fields, self.pairs, strict=True):
            codes = {a << 32 | b for p in phrases for a, b in pairwise(p)} - pairs_.keys()
            if codes:
                wanted = np.asarray(sorted(codes), np.int64)
                # Pairs that may be wanted: both words are some wanted pair's.
                maybe = (self._table(wanted >> 32)[pairs >> 32]
                         & self._table(wanted & 0xFFFFFFFF)[pairs & 0xFFFFFFFF])
                pairs_.update(_split(_hits(pairs, pair_doc, wanted, self.n, maybe), wanted, self.n))

    def _table(self, ids: np.ndarray) -> np.ndarray:
        """A lookup table over word ids: True at `ids` (a hit test in O(1) per word)."""
        table = np.zeros(self.size, dtype=bool)
        table[ids[(ids >= 0) & (ids < self.size)]] = True  # -1: a word in no entry
        return table

    def match(self, phrase: tuple[int, ...]) -> np.ndarray:
        """Per entry: IN_TITLE, IN_ABSTRACT, APART (all its words, not together) or 0."""
        out = np.zeros(self.n, dtype=np.int8)
        if not phrase or min(phrase) < 0:  # a word in no entry
            return out
        self.index({phrase})
        different = set(phrase)
        if len(different) == 1:
            present = self.words[2][phrase[0]]
        else:  # the shortest postings, kept where each other word's postings mark them
            lists = sorted((self.words[2][w] for w in different), key=len)
            present = lists[0]
            for other in lists[1:]:
                mark = np.zeros(self.n, dtype=bool)
                mark[other] = True
                present = present[mark[present]]
        out[present] = APART
        for value, f in ((IN_ABSTRACT, 1), (IN_TITLE, 0)):
            if len(phrase) == 1:
                together = self.words[f][phrase[0]]
            else:  # pair postings are short
                together = self.pairs[f][phrase[0] << 32 | phrase[1]]
                for a, b in pairwise(phrase[1:]):
                    together = np.intersect1d(together, self.pairs[f][a << 32 | b],
                                              assume_unique=True)
            if len(phrase) > 2:  # its pairs may stand apart: confirm the whole sequence
                flat, _, _, _, start = self.fields[f]
                together = [i for i in together.tolist()
                            if _contains(flat[start[i]:start[i + 1]].tolist(), list(phrase))]
            out[together] = value
        return out


def _hits(values: np.ndarray, doc: np.ndarray, wanted: np.ndarray, n: int,
          maybe: np.ndarray) -> np.ndarray:
    """Where `values` holds one of `wanted` (sorted, distinct), looking only where `maybe`:
    keys k·n + entry, k its index in `wanted`, each once and sorted (by value, then entry)."""
    at = np.flatnonzero(maybe)
    k = np.minimum(np.searchsorted(wanted, values[at]), len(wanted) - 1)
    ok = wanted[k] == values[at]
    return distinct(k[ok] * n + doc[at[ok]])


def _split(keys: np.ndarray, wanted: np.ndarray, n: int) -> dict[int, np.ndarray]:
    """_hits' keys as postings: value → sorted entries."""
    ends = np.searchsorted(keys // n, np.arange(1, len(wanted) + 1))
    return dict(zip(wanted.tolist(), np.split(keys % n, ends[:-1]), strict=True))


def _contains(seq: list[int], part: list[int]) -> bool:
    k = len(part)
    return any(seq[i:i + k] == part for i in range(len(seq) - k + 1) if seq[i] == part[0])
