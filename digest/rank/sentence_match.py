"""Matches on an entry's sentences. Pure numpy over sentence vectors: embeddings with the
semantic extra, concept-space rows without it.

A paper's background, method or result can each be what makes another paper relevant, and one
vector of the whole abstract blurs them (and stops at the model's 256 tokens). So:
- by_sentence, for a library of a few papers: each seed sentence is matched to its closest
  sentence of an entry, and a seed scores the mean over its sentences; by_concept_sentence
  is the same in the pool's concept space, on each reader's LEADING entries, for the default
  install (with the semantic extra it lost on csfcube-dev: docs/benchmarks.md);
- by_title, for every library: each seed's title is matched to its closest sentence of an
  entry, and the entry scores its best such match (a paper whose one sentence says what a
  library paper's title says). Over each reader's LEADING entries only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from digest.rank.pool import Pool, Sentences
from digest.rank.seeds import SENTENCE_PAPERS
from digest.rank.softmax import block_soft_max
from digest.rank.tuning import Tuning
from digest.semantic import sentences as sentence_texts

SENTENCE_BLOCK = 512  # entries per block of that product: (seed sentences × theirs) stays small
# The entries per reader, best first by everything else, that by_title re-scores: every seed
# title against every sentence of every entry is 342 GFLOP for 1,000 readers of 10 papers over
# 5,000 entries, and a digest shows 20. A speed limit, not fitted: docs/benchmarks.md has what
# 50 and 200 give.
LEADING = 100


def matched(seeds: int) -> bool:
    """Whether a library of this many seeds (papers and 👍 entries) is matched sentence by
    sentence: the one home of the rule, for the ranking and for what is embedded ahead."""
    return 0 < seeds <= SENTENCE_PAPERS


def embeds_sentences(seeds: int, tuning: Tuning) -> bool:
    """Whether a reader with this many seeds needs the entries' sentences embedded: for
    by_title if it is on, else for by_sentence. For the ranking and for what is embedded ahead."""
    return seeds > 0 if tuning.title_share > 0 else matched(seeds)


def by_sentence(pool: Pool, embed: Callable[[list[str]], np.ndarray], texts: list[list[str]],
                weights: list[np.ndarray], temperature: float) -> np.ndarray:
    """For each library (its seeds' texts, at their weights): a row over the pool's entries,
    the soft-max over its seeds of each seed's mean, over its sentences, of the best cosine to
    an entry's sentence."""
    seeds = [sentence_texts(t) for ts in texts for t in ts]
    queries = embed([x for parts in seeds for x in parts])
    best = np.empty((len(queries), len(pool.entries)), np.float32)
    vectors, starts = pool.sentences.vectors, pool.sentences.starts
    # All the batch's seed sentences at once, a block of entries at a time: one product
    # re-reads each entry sentence's vector for every query row, not once per reader.
    for lo in range(0, len(starts), SENTENCE_BLOCK):
        hi = min(lo + SENTENCE_BLOCK, len(starts))
        a, b = starts[lo], starts[hi] if hi < len(starts) else len(vectors)
        best[:, lo:hi] = np.maximum.reduceat(queries @ vectors[a:b].T, starts[lo:hi] - a, axis=1)
    per_seed = _seed_means(best, [len(x) for x in seeds])
    sizes = np.asarray([len(ts) for ts in texts])
    return block_soft_max(per_seed, np.concatenate(weights), np.r_[0, np.cumsum(sizes)[:-1]],
                          sizes, temperature)


def by_concept_sentence(pool: Pool, texts: list[list[np.ndarray]], weights: list[np.ndarray],
                        temperature: float, mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """by_sentence without embeddings, on each library's entries of its row of `mask` (its
    LEADING ones): sentences as TF-IDF rows in the concept space, where two sentences on one
    topic in different words are close; each seed text as its sentences' word ids
    (Seeds.sentence_ids). Per library: those entries' rows, and their scores."""
    queries, counts = pool.sentence_points([t for ts in texts for t in ts])
    out, q, s = [], 0, 0
    for r, ts in enumerate(texts):
        rows = np.flatnonzero(mask[r])
        picked, at = _gathered(pool.concept_sentences, rows)
        mine = counts[s:s + len(ts)]
        best = np.maximum.reduceat(queries[q:q + sum(mine)] @ picked.T, at, axis=1)
        out.append((rows, block_soft_max(_seed_means(best, mine), weights[r], np.zeros(1, np.int64),
                                         np.asarray([len(ts)]), temperature)[0]))
        q, s = q + sum(mine), s + len(ts)
    return out


def _seed_means(best: np.ndarray, counts: list[int]) -> np.ndarray:
    """Each seed's mean of its sentences' rows of `best` (each sentence's best match to each
    entry), the seeds' sentences consecutive, `counts` of them per seed."""
    sizes = np.asarray(counts)
    return np.add.reduceat(best, np.cumsum(sizes) - sizes, axis=0) / sizes[:, None]


def _gathered(sentences: Sentences, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sentence vectors of the entries at `rows`, one entry's after another's, gathered at
    once; and each entry's first row among them (every entry has one: its title)."""
    starts = sentences.starts
    ends = np.append(starts[1:], len(sentences.vectors))
    first, counts = starts[rows], ends[rows] - starts[rows]
    at = np.cumsum(counts) - counts
    return sentences.vectors[np.repeat(first - at, counts) + np.arange(counts.sum())], at


def leading(scores: np.ndarray) -> np.ndarray:
    """Each row's LEADING best entries, as a mask; with every entry tied with the last of them,
    so which of two equal scores is in does not depend on the order entries were stored in."""
    n = scores.shape[1]
    k = min(LEADING, n)
    return scores >= np.partition(scores, n - k, axis=1)[:, n - k:n - k + 1]


def by_title(pool: Pool, titles: np.ndarray, sizes: np.ndarray, mask: np.ndarray
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each reader (a block of `sizes` rows of `titles`, their seeds' title embeddings):
    the entries of their row of `mask`, in order, and (entries × seeds) the best cosine of each
    seed's title to a sentence of the entry (the reasons name the seed; the score is the max)."""
    out = []
    for r, (lo, hi) in enumerate(zip(np.cumsum(sizes) - sizes, np.cumsum(sizes), strict=True)):
        rows = np.flatnonzero(mask[r])
        picked, at = _gathered(pool.sentences, rows)
        out.append((rows, np.maximum.reduceat(picked @ titles[lo:hi].T, at, axis=0)))
    return out
