"""The pool model: everything about one pool of entries that every reader shares, built once
per Ranker. Per reader only the seed rows and a few vector operations remain."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from digest import sentences
from digest.lexical import TermWeights, words
from digest.models import StoredEntry
from digest.normalize import MIN_TITLE_KEY_WORDS, title_key
from digest.rank.background import Later
from digest.rank.concepts import Concepts, used_columns
from digest.rank.phrases import PhraseIndex
from digest.rank.prepare import analysed, split_abstracts
from digest.rank.seeds import author_key, entry_text
from digest.rank.stories import stories
from digest.rank.tuning import Tuning
from digest.store import Store

TITLE_HIT, BODY_HIT, SCATTERED_HIT = 8.0, 4.0, 1.2  # interest points (scoring.py)
_POINTS = np.asarray([0.0, SCATTERED_HIT, BODY_HIT, TITLE_HIT], dtype=np.float32)
_END = np.asarray([-1], dtype=np.int64)  # the end of a sentence's word ids


@dataclass
class Phrase:
    """Where one interest phrase occurs in the pool; shared by every reader who has it.
    Only the entries it occurs in: most phrases occur in few, and a row over every entry per
    phrase was the largest part of the memory a ranking grew (each worker its own)."""

    rows: np.ndarray  # the entries it occurs in, ascending
    kinds: np.ndarray  # at each: IN_TITLE, IN_ABSTRACT or APART

    @property
    def points(self) -> np.ndarray:
        """Interest points at each of `rows`."""
        return _POINTS.take(self.kinds)

    def at(self, idx) -> np.ndarray:
        """IN_TITLE, IN_ABSTRACT, APART or 0 at each entry of `idx`."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.zeros(len(idx), dtype=np.int8)
        if len(self.rows):
            k = np.minimum(np.searchsorted(self.rows, idx), len(self.rows) - 1)
            hit = self.rows[k] == idx
            out[hit] = self.kinds[k[hit]]
        return out

    def within(self, least: int) -> np.ndarray:
        """The entries where it occurs at `least` (IN_ABSTRACT: in the title or abstract)."""
        return self.rows[self.kinds >= least]


@dataclass(frozen=True)
class Sentences:
    """The pool's entries' sentence vectors (embeddings, or concept-space rows), as one
    matrix."""

    vectors: np.ndarray  # (sentences × dimensions), each entry's consecutive
    starts: np.ndarray  # per entry, the row of its first sentence


class Pool:
    def __init__(self, store: Store, entries: list[StoredEntry], now: datetime, phrases: set[str],
                 tuning: Tuning, embedder=None, parallel: bool = False):
        """`parallel`: build the concept space in a thread meanwhile (background.py)."""
        self.store = store
        self.entries = entries
        # TF-IDF terms and the words phrases are matched on, as term-dictionary ids: read
        # back, or worked out the first time an entry is ranked and stored (prepare.py).
        analyses, self.new_words, _ = analysed(store, entries)
        self.terms = TermWeights([a[0] for a in analyses])
        self._title_words = [a[1] for a in analyses]  # concept_sentences's first sentences
        concepts = Later(parallel, Concepts, self.terms.docs, tuning.concepts,
                         store.term_words(used_columns(self.terms.docs).tolist()))
        self.vectors = (embedder.embed([entry_text(e) for e in entries])
                        if embedder is not None and entries else None)
        self._embedder = embedder
        self._phrase_index = PhraseIndex([a[1] for a in analyses], [a[2] for a in analyses])
        self._read: dict[int, sentences.Sentences | None] = {}  # abstracts shown so far
        self._unsaved: list[tuple[str, bytes]] = []  # their sentences worked out here
        # The configured readers' phrases, indexed in one pass rather than one per phrase.
        self._word_ids = store.term_ids({w for p in phrases for w in words(p)}, add=False)
        self._phrase_index.index({self._phrase_ids(p) for p in phrases})
        self._phrases: dict[str, Phrase] = {}
        self.author_keys = [[author_key(a) for a in e.authors] for e in entries]
        self.by_author: dict[str, list[int]] = {}
        self.by_category: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            for key in set(self.author_keys[i]):
                self.by_author.setdefault(key, []).append(i)
            for cat in {c.lower() for c in e.categories}:
                self.by_category.setdefault(cat, []).append(i)
        ids = np.asarray([e.id for e in entries], dtype=object)
        self.id_order = np.argsort(np.argsort(ids)) if entries else np.zeros(0, dtype=np.int64)
        self.index_of = {e.id: i for i, e in enumerate(entries)}
        self.feeds_of = [set(e.sources) for e in entries]
        ages = [(now - datetime.fromisoformat(e.published)).total_seconds() / 86400
                for e in entries]
        self.age_days = np.maximum(np.asarray(ages, dtype=np.float32), 0.0)
        pops = np.asarray([e.popularity for e in entries], dtype=np.float32)
        self.popularity = pops
        self.by_popularity = np.lexsort((self.id_order, -pops)) if entries else np.zeros(0, np.int64)
        self.pop_signal = np.log1p(pops) / math.log(101)
        # Stories join near-identical titles, compared on their (stemmed) words.
        self.story = stories([frozenset(a[1].tolist()) for a in analyses])
        if parallel:
            # While the concept space is still being built: what every reader looks up, done
            # once here rather than once in each forked worker (phrases: ~55 ms for the
            # 1,328 of benchmarks/bench_rank.py's 1,000 readers).
            _ = self.by_title, self.by_key
            for p in sorted(phrases):
                self.phrase(p)
        self.concepts = concepts.result()

    @functools.cached_property
    def by_term(self) -> sp.csr_matrix:
        """Entries as columns: seed rows @ this, the cheapest product for each seed paper's
        own row (a finite TF-IDF temperature, tuning.RULED_OUT); centroids use terms.cosines."""
        return self.terms.docs.T.tocsr()

    @functools.cached_property
    def by_title(self) -> dict[str, list[int]]:
        """Entry rows by title key, for finding a reader's library papers among the entries:
        the key feeds join on (normalize.title_key), and like them not for short titles."""
        out: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            key = title_key(e.title)
            if len(key.split()) >= MIN_TITLE_KEY_WORDS:
                out.setdefault(key, []).append(i)
        return out

    @functools.cached_property
    def by_key(self) -> dict[str, list[int]]:
        """Entry rows by arXiv id and DOI key ("arxiv:…", "doi:…"), for finding a reader's
        library papers among the entries whatever their titles here: one query per pool."""
        out: dict[str, list[int]] = {}
        for key, entry_id in self.store.strong_keys(list(self.index_of)):
            out.setdefault(key, []).append(self.index_of[entry_id])
        return out

    @functools.cached_property
    def sentences(self) -> Sentences:
        """Every entry's sentences (its title first) embedded, for the matches on them
        (sentence_match): embedded once ever, like the entries themselves."""
        return Sentences(*self._embedder.embed_sentences([entry_text(e) for e in self.entries]))

    @functools.cached_property
    def concept_sentences(self) -> Sentences:
        """Every entry's sentences (its title first) as unit vectors in the concept space, for
        the lexical sentence match of a library of a few papers (sentence_match): from the
        words stored with each entry (prepare.py); where none are stored yet, its abstract is
        split as a shown one is (abstracts), and kept for save_sentences."""
        stored = [sentences.decode(e.sentences) for e in self.entries]
        todo = [k for k, x in enumerate(stored) if x is None]
        if todo:
            self._unsaved += split_abstracts([self.entries[k] for k in todo], self.store.term_ids)
            for k in todo:
                stored[k] = sentences.decode(self.entries[k].sentences)
        parts, counts = [], []
        for title, found in zip(self._title_words, stored, strict=True):
            body = found.words
            parts += [title, _END, body]  # each sentence's word ids, then a -1
            counts.append(1 + int(np.count_nonzero(body == -1)))
        vectors = self._concept_rows(np.concatenate(parts) if parts else _END[:0])
        return Sentences(vectors, (np.cumsum(counts) - counts).astype(np.int64))

    def sentence_points(self, texts: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        """Seed texts' sentences (word_ids_of, or as Seeds keep them) in the concept space,
        one text's after another's, and how many each has (at least one, so an empty text is
        one empty sentence)."""
        bodies = [b if len(b) else _END for b in texts]
        vectors = self._concept_rows(np.concatenate(bodies) if bodies else _END[:0])
        return vectors, [int(np.count_nonzero(b == -1)) for b in bodies]

    def word_ids_of(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's sentences' words as term ids, each sentence followed by -1, as
        sentences.encode stores them; a word the dictionary lacks weighs nothing and is left
        out (looked up in one query, without adding it)."""
        stems = [sentences.analyze(t).stems for t in texts]
        missing = {w for st in stems for ws in st for w in ws if w not in self._word_ids}
        if missing:
            found = self.store.term_ids(missing, add=False)
            self._word_ids.update({w: found.get(w, -1) for w in missing})
        return [sentences.word_ids(st, self._word_ids) for st in stems]

    def _concept_rows(self, flat: np.ndarray) -> np.ndarray:
        """Word ids with a -1 after each sentence → one unit concept-space row per sentence
        (a TF-IDF row projected; all zeros for a sentence with no term the pool weighs)."""
        ends = flat == -1
        n = int(np.count_nonzero(ends))
        rows = (np.cumsum(ends) - ends)[~ends]
        ids = flat[~ends].astype(np.int64)
        width = int(ids.max()) + 1 if len(ids) else 1
        keys, counts = np.unique(rows * width + ids, return_counts=True)
        matrix = self.terms.matrix(keys % width, counts, np.bincount(keys // width, minlength=n))
        return self.concepts.project(matrix)

    def abstracts(self, rows: list[int], ids: Callable[[Iterable[str]], Mapping[str, int]]
                  ) -> list[sentences.Sentences | None]:
        """Entries' abstracts split into sentences, for their highlights (None: no sentence):
        read from the database, or the first time an entry is shown worked out, with `ids`
        giving their words' term ids, and kept for save_sentences."""
        unread = {r: sentences.decode(self.entries[r].sentences)
                  for r in dict.fromkeys(rows) if r not in self._read}
        new = [r for r, stored in unread.items() if stored is None]
        if new:
            self._unsaved += split_abstracts([self.entries[r] for r in new], ids)
            unread.update({r: sentences.decode(self.entries[r].sentences) for r in new})
        for r, stored in unread.items():
            doc = sentences.Sentences(self.entries[r].summary_text, stored)
            self._read[r] = doc if doc.n else None
        return [self._read[r] for r in rows]

    def save_sentences(self) -> None:
        """Store the sentences worked out since the last call (in this process's store)."""
        if self._unsaved:
            self.store.save_sentences(self._unsaved)
            self._unsaved = []

    def _phrase_ids(self, text: str) -> tuple[int, ...]:
        """A phrase's words as term ids; -1 for a word in no entry ranked so far."""
        ws = words(text)
        missing = [w for w in ws if w not in self._word_ids]
        if missing:
            found = self.store.term_ids(missing, add=False)
            self._word_ids.update({w: found.get(w, -1) for w in missing})
        return tuple(self._word_ids[w] for w in ws)

    def phrase(self, text: str) -> Phrase:
        """Where an interest phrase occurs. Cached: readers share phrases."""
        found = self._phrases.get(text)
        if found is None:
            match = self._phrase_index.match(self._phrase_ids(text))
            rows = np.flatnonzero(match)
            found = self._phrases[text] = Phrase(rows, match[rows])
        return found
