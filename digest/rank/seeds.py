"""A reader's seed papers (library papers, then 👍 entries) as ranking uses them, the SQLite
cache that spares re-parsing and re-tokenizing a library on every ranking, and their TF-IDF
rows as the reasons read them (SeedTerms)."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from digest import sentences
from digest.errors import ConfigError
from digest.highlight import Marks, paper_words
from digest.lexical import TOKENIZER_VERSION, TermWeights, distinct, tokens
from digest.library import load_library
from digest.models import StoredEntry
from digest.normalize import title_key
from digest.store import Store

log = logging.getLogger("digest.rank")

# A reader's seeds as a dense (seeds × terms) matrix up to this many cells (4 MB), for the reasons.
DENSE_CELLS = 1 << 20
# bump when Seeds.to_bytes or what it holds changes (7: raw arrays; 8: sentences' word ids)
LIBRARY_CACHE_FORMAT = 8
# A library of up to this many papers (with 👍 items) is also matched sentence by sentence
# (sentence_match.matched), at a share of 1 / papers (scoring._library): past it the share is
# small and the cost is not (sentences × sentences per seed paper). A speed limit, not fitted.
# Such seeds keep their sentences' word ids, worked out once rather than at every ranking.
SENTENCE_PAPERS = 3


@dataclass
class Seeds:
    titles: list[str]
    texts: list[str]  # what the embeddings are computed from
    warnings: list[str]
    ids: np.ndarray  # term ids of every paper, paper after paper
    counts: np.ndarray  # their counts
    sizes: list[int]  # terms per paper
    keys: list[str] = field(default_factory=list)  # library papers' arXiv ids and DOIs
    # What highlights match (highlight.paper_words): each paper's distinct content words as
    # term ids, paper after paper; and those of all the titles, once each.
    words: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    word_sizes: list[int] = field(default_factory=list)
    title_words: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    title_keys: list[str] = field(default_factory=list)  # normalize.title_key of each title
    # Of up to SENTENCE_PAPERS seeds (else empty): each text's sentences' words as term ids,
    # each sentence followed by -1 (as sentences.encode stores an entry's), text after text;
    # and how many ids each text has there.
    sentence_words: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    sentence_sizes: list[int] = field(default_factory=list)

    # The cache (format 8): a JSON head of the lists and texts, then the arrays' raw bytes. The
    # arrays were base64 inside the JSON, and decoding them was over half of reading a library
    # (86 µs of a 10-paper library's ~140, read once per reader per ranking; now ~55, most
    # of it the JSON of the texts).
    def to_bytes(self) -> bytes:
        arrays = [np.asarray(self.ids, "<i4"), np.asarray(self.counts, "<f4"),
                  np.asarray(self.words, "<i4"), np.asarray(self.title_words, "<i4"),
                  np.asarray(self.sentence_words, "<i4")]
        head = json.dumps({"titles": self.titles, "texts": self.texts, "warnings": self.warnings,
                           "sizes": self.sizes, "keys": self.keys, "word_sizes": self.word_sizes,
                           "title_keys": self.title_keys, "sentence_sizes": self.sentence_sizes,
                           "lengths": [len(a) for a in arrays]},
                          ensure_ascii=False).encode()
        return b"".join([len(head).to_bytes(4, "little"), head, *(a.tobytes() for a in arrays)])

    @classmethod
    def decode(cls, data: bytes | str) -> Seeds | None:
        """to_bytes()'s cache, or an older format's JSON (`digest prune` reads every cached
        library, whatever its format; a ranking reads only this format's); None for a row
        that no longer decodes (damaged: derived data, worked out again from the file)."""
        try:
            return cls._decode(data)
        except (ValueError, KeyError, TypeError):
            return None

    @classmethod
    def _decode(cls, data: bytes | str) -> Seeds:
        if isinstance(data, str):
            return cls._from_json(data)
        size = int.from_bytes(data[:4], "little")
        # Decoded first: json.loads of bytes decodes them with the surrogatepass handler, a
        # third slower than plain UTF-8 on a head that is mostly the papers' texts.
        d = json.loads(data[4:4 + size].decode())
        # Format 7 (read by `digest prune`) had no sentences' word ids.
        lengths = d["lengths"] + [0] * (len(d["lengths"]) == 4)
        at = list(itertools.accumulate((4 * n for n in lengths), initial=4 + size))
        sentence_sizes = d.get("sentence_sizes", [])
        # Lengths that disagree with the bytes or with each other would give wrong arrays,
        # not an error (frombuffer reads everything left for a count of -1): as damaged.
        if (len(lengths) != 5 or min(lengths) < 0 or at[-1] != len(data)
                or lengths[0] != lengths[1] or sum(d["sizes"]) != lengths[0]
                or sum(d["word_sizes"]) != lengths[2] or sum(sentence_sizes) != lengths[4]
                or not len(d["titles"]) == len(d["texts"]) == len(d["sizes"])
                or len(sentence_sizes) not in (0, len(d["texts"]))):
            raise ValueError("the cached library's parts disagree")
        ids, counts, words, title_words, sentence_words = (
            np.frombuffer(data, dtype, n, a) for dtype, n, a in
            zip(("<i4", "<f4", "<i4", "<i4", "<i4"), lengths, at[:5], strict=True))
        # Copies, not views of the row: a view would keep the whole row (mostly the papers'
        # texts, tens of MB for a library of thousands) alive as long as the seeds.
        return cls(d["titles"], d["texts"], d["warnings"], ids.astype(np.int64),
                   counts.astype(np.float32), d["sizes"], d["keys"], words.astype(np.int32),
                   d["word_sizes"], title_words.astype(np.int32), d["title_keys"],
                   sentence_words.astype(np.int32), sentence_sizes)

    @classmethod
    def _from_json(cls, data: str) -> Seeds:
        """Formats 3 to 6: the arrays as base64 int32 inside the JSON."""
        d = json.loads(data)
        def unpack(s):
            return np.frombuffer(base64.b64decode(s), dtype="<i4").astype(np.int32)
        return cls(d["titles"], d["texts"], d["warnings"], unpack(d["ids"]).astype(np.int64),
                   unpack(d["counts"]).astype(np.float32), d["sizes"],
                   d.get("keys", []),  # absent from the cache of format 3
                   unpack(d.get("words", "")), d.get("word_sizes", []),
                   unpack(d.get("title_words", "")), d.get("title_keys", []))

    def __add__(self, other: Seeds) -> Seeds:
        return Seeds(self.titles + other.titles, self.texts + other.texts, self.warnings,
                     np.concatenate([self.ids, other.ids]),
                     np.concatenate([self.counts, other.counts]), self.sizes + other.sizes,
                     self.keys + other.keys, np.concatenate([self.words, other.words]),
                     self.word_sizes + other.word_sizes,
                     np.union1d(self.title_words, other.title_words),
                     self.title_keys + other.title_keys,
                     np.concatenate([self.sentence_words, other.sentence_words]),
                     self.sentence_sizes + other.sentence_sizes)

    def sentence_ids(self) -> list[np.ndarray] | None:
        """Each text's sentences' word ids (sentence_words), or None where some text has none
        kept (more than SENTENCE_PAPERS seeds together, or 👍 items added to a larger library)."""
        if len(self.sentence_sizes) != len(self.texts):
            return None
        return np.split(self.sentence_words, np.cumsum(self.sentence_sizes)[:-1])

    def marks(self, phrases: tuple[tuple[str, ...], ...]) -> Marks:
        """What a highlight of this reader matches (highlight.Marks): `phrases` as stems, the
        titles' words and each paper's."""
        return Marks(phrases, self.title_words, self.words, np.cumsum([0, *self.word_sizes]))


NO_SEEDS = Seeds([], [], [], np.zeros(0, np.int64), np.zeros(0, np.float32), [])


def make_seeds(store: Store, titles: list[str], texts: list[str], warnings: list[str],
               add: bool = False) -> Seeds:
    """Seeds of papers (or entries) by title and text; with no titles (👎 entries, which
    nothing highlights), without the highlight's words."""
    bags = [Counter(tokens(t)) for t in texts]
    parts = [paper_words(t, x) for t, x in zip(titles, texts, strict=True)] if titles else []
    # Only a few seeds are matched sentence by sentence (sentence_match); 👎 entries never.
    stems = ([sentences.analyze(t).stems for t in texts]
             if titles and len(texts) <= SENTENCE_PAPERS else [])
    # Words not in the dictionary are in no entry ranked so far; unless the seeds are cached
    # (`add`: cached ids must stay valid), they can be left out.
    ids = store.term_ids({t for b in bags for t in b} | {w for p in parts for ws in p for w in ws}
                         | {w for st in stems for ws in st for w in ws}, add=add)
    pairs = [(ids[t], c) for b in bags for t, c in b.items() if t in ids]
    sizes = [sum(t in ids for t in b) for b in bags]
    known = [[ids[w] for ws in p for w in ws if w in ids] for p in parts]
    split = [sentences.word_ids(st, ids) for st in stems]
    return Seeds(titles, texts, warnings, np.asarray([t for t, _ in pairs], np.int64),
                 np.asarray([c for _, c in pairs], np.float32), sizes,
                 words=np.asarray([i for k in known for i in k], np.int32),
                 word_sizes=list(map(len, known)),
                 title_words=np.asarray(sorted({ids[w] for t, _ in parts for w in t if w in ids}),
                                        np.int32),
                 title_keys=list(map(title_key, titles)),
                 sentence_words=np.concatenate([np.zeros(0, np.int32), *split]).astype(np.int32),
                 sentence_sizes=list(map(len, split)))


def library_seeds(store: Store, path: Path) -> Seeds:
    """A reader's seed library, parsed and tokenized once per file version: the result is
    cached in SQLite under the file's mtime and size, as titles, texts and term ids."""
    try:
        st = path.stat()
        stamp = f"{st.st_mtime_ns}:{st.st_size}:{TOKENIZER_VERSION}:{LIBRARY_CACHE_FORMAT}"
    except OSError:
        stamp = ""
    cached = store.cached_library(str(path), stamp) if stamp else None
    seeds = None if cached is None else Seeds.decode(cached)
    if seeds is not None:
        return seeds
    lib = load_library(path)
    seeds = make_seeds(store, [p.title for p in lib.papers], [p.text for p in lib.papers],
                       lib.warnings, add=True)
    seeds.keys = sorted({k for p in lib.papers for k in p.keys})
    if stamp:
        store.save_library(str(path), stamp, seeds.to_bytes())
    return seeds


def readable_library(store: Store, path: Path) -> Seeds:
    """library_seeds, or, when the file cannot be read at all (deleted, unreadable, not
    CSL-JSON), no seeds and the reason as its one warning, said to the operator on stderr or in
    the log: one reader's broken export must not stop every reader's digest. Theirs is ranked by
    their phrases, authors and votes, its footer giving the reason; `digest check` still fails
    on it. Not cached: the next ranking reads the file again."""
    try:
        return library_seeds(store, path)
    except ConfigError as e:
        log.warning("%s Until then, digests are ranked without this library.", e)
        return Seeds([], [], e.problems, NO_SEEDS.ids, NO_SEEDS.counts, [])


def entry_text(e: StoredEntry) -> str:
    return f"{e.title}. {e.summary_text}"


@functools.lru_cache(maxsize=1 << 16)  # names recur across entries, readers and days
def author_key(name: str) -> str:
    """'Yann LeCun', 'LeCun, Yann', 'Y. LeCun' and 'Yann Le Cun'-free spelling → 'lecun y'."""
    n = unicodedata.normalize("NFKD", name or "")
    n = "".join(c for c in n if not unicodedata.combining(c)).lower()
    if "," in n:
        last, _, first = n.partition(",")
        n = f"{first} {last}"
    parts = re.findall(r"[a-z]+", n)
    if not parts:
        return ""
    return f"{parts[-1]} {parts[0][0]}" if len(parts) > 1 else parts[0]


def short(title: str, limit: int = 70) -> str:
    return title if len(title) <= limit else title[: limit - 1].rsplit(" ", 1)[0] + "…"


class SeedTerms:
    """A reader's seed rows as a dense (seeds × their own terms) matrix: the TF-IDF cosines to
    the few entries the reasons need come from plain numpy indexing (a scipy product per reader
    costs more in overhead than in arithmetic). Terms are numbered among those the pool uses
    (TermWeights.columns), so the reader's own are found through a table as long as the
    pool's vocabulary, not the term dictionary, which grows for good. A library so large that
    the dense matrix would pass DENSE_CELLS (thousands of papers: a 20,000-paper one needed
    gigabytes) keeps its sparse rows and pays a scipy product per call."""

    def __init__(self, seeds: sp.csr_matrix, first: int, count: int, terms: TermWeights):
        """Rows first … first + count − 1 of a batch's seed matrix (TermWeights.matrix of
        `terms`)."""
        self.terms = terms
        ptr = seeds.indptr[first:first + count + 1]
        cols = terms.columns(seeds.indices[ptr[0]:ptr[-1]])
        self.vocab = distinct(cols)
        self.sparse = None
        if count * len(self.vocab) > DENSE_CELLS:
            self.sparse = seeds[first:first + count]
            return
        self.dense = np.zeros((count, len(self.vocab)), np.float32)
        self.dense[np.repeat(np.arange(count), np.diff(ptr)),
                   terms.local(self.vocab, cols)] = seeds.data[ptr[0]:ptr[-1]]

    def cosines(self, rows: list[int]) -> np.ndarray:
        """(seeds × rows) cosines to the pool's entries at `rows`."""
        if self.sparse is not None:
            docs = self.terms.docs
            return (self.sparse @ docs[np.asarray(rows, dtype=np.int64)].T).toarray().astype(
                np.float32, copy=False)
        if not len(self.vocab):
            return np.zeros((self.dense.shape[0], len(rows)), np.float32)
        cols, data, lengths = self.terms.entry_terms(rows)
        column = self.terms.local(self.vocab, cols)
        hit = column >= 0
        entries = np.zeros((len(rows), len(self.vocab)), np.float32)
        entries[np.repeat(np.arange(len(rows)), lengths)[hit], column[hit]] = data[hit]
        return self.dense @ entries.T
