"""Lexical text model: tokenizing, stemming, TF-IDF vectors and phrase matching.

Stemming (Snowball English) matters: on the reviewer-dev judgments it cut the pairwise error of
max-cosine TF-IDF from 0.263 to 0.242, more than bigrams, title boosts or BM25 did.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import snowballstemmer

# Hyphenated compounds ("few-shot", "self-attention") stay one term for TF-IDF: they are more
# specific than their parts (reviewer-dev error 0.202 whole vs 0.212 split). Phrase matching
# splits them, so the interest "long context" finds "Long-Context".
TOKENIZER_VERSION = "1"  # bump when tokens() changes: cached library tokens are keyed by it
TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")

# The usual English function words; content words such as "learning" stay.
STOPWORDS = frozenset("""
a about above after again against all almost also although am among an and another any are as
at be because been before being below between both but by can cannot could did do does doing
done down during each either else etc even ever every few for from further had has have having
he her here hers herself him himself his how however i if in into is it its itself just least
less let like made make many may me might more most much must my myself neither no nor not now
of off often on once one only or other others otherwise our ours ourselves out over own per
rather same several shall she should show shows shown since so some such than that the their
theirs them themselves then there therefore these they this those though through thus to too
toward towards under until up upon us use used using very via was we well were what whatever
when where whether which while who whom whose why will with within without would yet you your
yours yourself yourselves paper propose proposed present presents approach method methods
result results work new based
""".split())  # noqa: SIM905 - easier to read and edit as prose

_stemmer = snowballstemmer.stemmer("english")
_stem_cache: dict[str, str] = {}
# word → its TF-IDF term, or "" for stopwords and one-letter words. Snowball is slow in pure
# Python; vocabularies are small, so every word is stemmed once per process.
_term_cache: dict[str, str] = {}


def stem(word: str) -> str:
    s = _stem_cache.get(word)
    if s is None:
        s = _stem_cache[word] = _stemmer.stemWord(word)
    return s


def _term(word: str) -> str:
    t = "" if len(word) < 2 or word in STOPWORDS else stem(word)
    _term_cache[word] = t
    return t


def tokens(text: str) -> list[str]:
    """Lowercased, stop-worded, stemmed tokens."""
    get = _term_cache.get
    out = []
    for w in TOKEN_RE.findall(text.lower()) if text else ():
        t = get(w)
        if t is None:
            t = _term(w)
        if t:
            out.append(t)
    return out


def words(text: str) -> list[str]:
    """Every word stemmed, compounds split, stopwords kept: what phrases are matched against,
    so "style transfer" matches "Style-Transfer" but not "style and of transfer"."""
    return analyze(text)[1]


def analyze(text: str) -> tuple[list[str], list[str]]:
    """(tokens(text), words(text)) from one pass of the regex: ingest-sized pools need both.
    Cache lookups go through map() so the common case (every word seen before) runs in C."""
    raw = TOKEN_RE.findall(text.lower()) if text else []
    parts = " ".join(raw).replace("-", " ").split()  # compounds split: WORD_RE's words
    try:
        terms = list(filter(None, map(_term_cache.__getitem__, raw)))
        stems = list(map(_stem_cache.__getitem__, parts))
    except KeyError:  # a word not seen yet in this process
        for w in raw:
            if w not in _term_cache:
                _term(w)
        terms = list(filter(None, map(_term_cache.__getitem__, raw)))
        stems = [stem(w) for w in parts]
    return terms, stems


def encode_analysis(title: str, summary_text: str) -> str:
    """An entry's tokens and words, computed once at ingest (in the parse workers) and stored
    with it, so ranking a pool does not re-tokenize it. Keyed by TOKENIZER_VERSION."""
    t_terms, t_words = analyze(title)
    b_terms, b_words = analyze(summary_text)
    return "\x1e".join([TOKENIZER_VERSION, " ".join(t_terms + b_terms), " ".join(t_words),
                         " ".join(b_words)])


def decode_analysis(stored: str) -> tuple[list[str], list[str], list[str]] | None:
    """(tokens, title words, abstract words), or None when stored by another tokenizer."""
    parts = stored.split("\x1e") if stored else ()
    if len(parts) != 4 or parts[0] != TOKENIZER_VERSION:
        return None
    return parts[1].split(), parts[2].split(), parts[3].split()


class Vocabulary:
    """Terms and inverse document frequencies, fitted once on a corpus of token lists."""

    def __init__(self, docs: Iterable[Sequence[str]]):
        df: Counter[str] = Counter()
        n = 0
        for doc in docs:
            n += 1
            df.update(set(doc))  # counted in C
        self.index = {t: i for i, t in enumerate(sorted(df))}
        self.n_docs = n
        # Smoothed IDF, as in scikit-learn: terms in every document still count a little.
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in sorted(df)],
                            dtype=np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def matrix(self, docs: Sequence[Sequence[str] | Mapping[str, int]],
               top: int | None = None) -> sp.csr_matrix:
        """Sublinear-TF × IDF rows, L2-normalized, from token lists or term counts. Unknown
        terms are dropped. With `top`, only
        each row's `top` heaviest terms are kept (norms are taken before, so a pruned row keeps
        its true scale and its cosines are slight underestimates)."""
        bags = [doc if isinstance(doc, Mapping) else Counter(doc) for doc in docs]  # C counts
        get = self.index.get
        cols = np.asarray([get(t, -1) for bag in bags for t in bag], dtype=np.int64)
        counts = np.asarray([c for bag in bags for c in bag.values()], dtype=np.float32)
        rows = np.repeat(np.arange(len(docs)), [len(bag) for bag in bags])
        known = cols >= 0  # unknown terms are dropped
        cols, counts, rows = cols[known].astype(np.int32), counts[known], rows[known]
        ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(docs)))])
        data = (1.0 + np.log(counts)) * self.idf[cols]
        # Row norms without intermediate sparse matrices (this runs for every reader).
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=len(docs)))
        norms[norms == 0] = 1.0
        data = (data / norms[rows]).astype(np.float32)
        if top is not None and len(data) and np.diff(ptr).max() > top:
            order = np.lexsort((-data, rows))  # by row, heaviest first within each row
            keep = order[np.arange(len(order)) - ptr[rows[order]] < top]
            keep.sort()  # back to row order
            cols, data, rows = cols[keep], data[keep], rows[keep]
            ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(docs)))])
        return sp.csr_matrix((data, cols, ptr), shape=(len(docs), len(self)))


def soft_max(sims: np.ndarray, temperature: float) -> np.ndarray:
    """Per row, T·log(mean(exp(s/T))) over the seed papers: near the best match when one seed
    is close, higher when several are. A pure max ignores the rest of a library; a mean (or a
    centroid) drowns a specialist's one close paper among the others. It stays on the cosine
    scale whatever the library size (unlike a plain log-sum-exp), so a score floor means the
    same for every reader. temperature → 0 gives the max."""
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0], dtype=np.float32)
    top = sims.max(axis=1, keepdims=True)
    lse = top + temperature * np.log(np.exp((sims - top) / temperature).mean(axis=1, keepdims=True))
    return lse.ravel().astype(np.float32)
