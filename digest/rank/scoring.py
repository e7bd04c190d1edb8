"""Scores for a batch of readers as one (readers × entries) matrix. Pure: the pool model and
each reader's profile in, numbers out.

Every similarity is put on one scale before it is mixed: per reader, in standard deviations
above the pool's average (standardize). So a point means the same for a reader with a
500-paper library and one with two papers, a TF-IDF cosine and an embedding cosine meet without
a hand-set exchange rate, and one `min_score` cuts every digest the same way.

    similarity = std( library · [std(TF-IDF cosine to the seeds' centroid)
                                 + std(soft-max_Tc(concept-space cosines to the seeds))
                                 + (1 − 1/n) · std(query likelihood of the seeds' words, μ)]
                      + semantic · share · std(embedding cosine to the seeds' centroid) )
    with ≤ 3 seeds the embedding term is (1 − 1/n) · std(that) + 1/n · std(the mean over the
    seeds of the mean, over a seed's sentences, of the best cosine to an entry's sentence)
    then, on the reader's 100 leading entries by that, + semantic · title_share · std(the best
    cosine of a seed's title to a sentence of the entry), std over those 100; without
    embeddings, with ≤ 3 seeds, + library · concept_sentences / n · std(the sentence match
    above, in the concept space), on the 100 leading entries by the lexical views
    with votes: (1 − s) · similarity + s · std(vote model), s = votes / (votes + vote_half)
    relevance = similarity − feedback · dislike · std(softmax(cos to 👎 items))
              + interests · Σ weight × phrase points (title 8, abstract 4, scattered 1.2)
              + authors · 10 per followed author (up to two) + categories · 6 if followed
              + popularity · 20 · log(1 + upvotes) / log(101)
    score = relevance · 0.5 ^ (age / half_life) where positive; × 0.1 − 10 on an `exclude` match

With the default min_score, what passes is three deviations above the pool (on a pool of
unrelated papers, a handful in 500 for a library of any size), an abstract phrase of weight 1,
or a followed author.

The soft-max, T·log(mean(exp(w·cos/T))), is close to the best match for a one-paper library or
one of a few unrelated topics; in the concept space, where related papers are close, a library
of many related papers lifts what they have in common; Tc, μ and share are fitted (tuning.py).
The query likelihood (lexical.TermWeights.likelihoods) saturates counts and makes a long entry
earn its length, as a cosine does not; a one-paper library, where it did worse, goes without.
The TF-IDF and embedding views are the soft-max's limit T → ∞, the mean cosine, i.e. the
cosine to the seeds' centroid: fitting their T did not earn its keep (tuning.RULED_OUT), and
the TF-IDF centroid is one row per reader in the sparse product instead of one per seed paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import scipy.sparse as sp

from digest.rank import sentence_match
from digest.rank.phrases import IN_ABSTRACT
from digest.rank.pool import Pool
from digest.rank.reader import Reader
from digest.rank.seeds import SeedTerms
from digest.rank.softmax import seed_soft_max
from digest.rank.tuning import Tuning
from digest.rank.votes import vote_model
from digest.settings import RankingSettings, UserConfig

# A followed author outweighs a title phrase of weight 1, a category is three quarters of one, and
# 100 upvotes at weight 0.1 a quarter of one: product decisions, not fitted.
AUTHOR_POINTS, CATEGORY_POINTS, POPULARITY_POINTS = 10.0, 6.0, 20.0
EXCLUDE_FACTOR, EXCLUDE_PENALTY = 0.1, 10.0
# Standardizing over a tiny pool would call its best entry good whatever it is: the pool's
# statistics are shrunk toward those of unrelated texts as if PRIOR_ENTRIES more were there.
PRIOR_ENTRIES = 20
PRIOR_SPREAD = 0.05  # cosine spread between unrelated texts; the prior mean is 0
# Seed papers scored in one batch: their term arrays and sparse rows (~50 bytes a term while
# they are built) stay in the tens of MB when readers import libraries of thousands of papers.
# A batch of ordinary libraries (64 readers of ten papers) is one group. Not fitted.
BATCH_SEEDS = 8192
Item = TypeVar("Item")  # what in_groups groups


def standardize(rows: np.ndarray) -> np.ndarray:
    """Each row in standard deviations above its mean, with the shrinkage above."""
    n = rows.shape[1]
    if n == 0:
        return rows
    k = n / (n + PRIOR_ENTRIES)
    mean = k * rows.mean(axis=1, keepdims=True)
    var = k * rows.var(axis=1, keepdims=True) + (1 - k) * PRIOR_SPREAD ** 2
    return ((rows - mean) / np.sqrt(var)).astype(np.float32)


def tf_idf_view(pool: Pool, seeds: sp.csr_matrix, weights: np.ndarray, offsets: np.ndarray,
                 sizes: np.ndarray, temperature: float) -> np.ndarray:
    """Each reader's TF-IDF closeness of every entry to their seeds (rows of consecutive
    blocks), one row per reader. At T = ∞ (the mean cosine) the seeds are summed into their
    weighted centroid first, so the product has a row per reader, not per seed paper."""
    if math.isinf(temperature):
        owner = np.repeat(np.arange(len(sizes)), sizes)
        share = (weights / np.repeat(sizes, sizes)).astype(np.float32)
        centroids = sp.csr_matrix((share, (owner, np.arange(len(owner)))),
                                  shape=(len(sizes), seeds.shape[0])) @ seeds
        return pool.terms.cosines(centroids)
    def product(a, b, scale):
        sims = (seeds[a:b] @ pool.by_term).toarray().astype(np.float32, copy=False)
        sims *= scale[:, None]
        return sims
    return seed_soft_max(product, weights, offsets, sizes, temperature, len(pool.entries))


def score_batch(pool: Pool, w: RankingSettings, tuning: Tuning, users: list[UserConfig],
                metas: list[Reader], embed=None) -> np.ndarray:
    """Scores as a (readers × entries) matrix; see the module docstring for the formula.
    `embed(texts)` gives seed embeddings (the semantic extra), or is None. Its memory grows
    with the readers' seed papers together: callers pass a group of in_groups at a time."""
    relevance = np.zeros((len(users), len(pool.entries)), dtype=np.float32)
    _library(relevance, pool, w, tuning, metas, embed)
    _dislikes(relevance, pool, w, tuning, metas)
    _interests(relevance, pool, w, metas)
    _follows(relevance, pool, w, users, metas)
    popularity = np.asarray([u.popularity for u in users], dtype=np.float32)[:, None]
    relevance += popularity * POPULARITY_POINTS * pool.pop_signal
    return _decayed(relevance, pool, users, metas)


def in_groups(items: Iterable[Item], seeds: Callable[[Item], int]) -> Iterator[list[Item]]:
    """Consecutive items in lists of at most BATCH_SEEDS seeds, unless one alone has more.
    Lazy: an item is taken (a reader's library loaded) only as its group fills, so a caller
    that finishes a group before the next holds one group's libraries at a time."""
    group: list[Item] = []
    total = 0
    for item in items:
        n = seeds(item)
        if group and total + n > BATCH_SEEDS:
            yield group
            group, total = [], 0
        group.append(item)
        total += n
    if group:
        yield group


def _library(relevance: np.ndarray, pool: Pool, w: RankingSettings, tuning: Tuning,
             metas: list[Reader], embed) -> None:
    """Closeness to the seed papers and 👍 entries: every reader's seeds in one product, then
    a soft-max over each reader's own block of rows; the same in the concept space and over
    embeddings; then each voter's own model blended in. Keeps on each Reader what the reasons
    need (its seeds' TF-IDF rows and embeddings)."""
    sizes = np.asarray([len(m.seed_names) for m in metas])
    if not sizes.sum():
        return
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # Each reader's block: library papers at 1, then 👍 entries at `feedback`.
    weights = np.ones(int(sizes.sum()), np.float32)
    for end, m in zip(np.cumsum(sizes).tolist(), metas, strict=True):
        weights[end - m.n_liked:end] = w.feedback
    # Each seed paper on its heaviest terms; a small library's papers on more of them.
    top = np.repeat([max(tuning.seed_terms, tuning.term_budget // max(s, 1)) for s in sizes],
                    sizes)
    ids, counts = (np.concatenate([m.seeds.ids for m in metas]),
                   np.concatenate([m.seeds.counts for m in metas]))
    seed_sizes = [s for m in metas for s in m.seeds.sizes]
    seeds = pool.terms.matrix(ids, counts, seed_sizes, top=top)
    has = sizes > 0
    blocks = (weights, offsets[has], sizes[has])
    similarity = w.library * standardize(tf_idf_view(pool, seeds, *blocks, tuning.temperature))
    many = sizes > 1
    if tuning.dirichlet and w.library > 0 and many.any():
        # The library's words as one language model (each seed's counts at its weight), at a
        # share of 1 − 1/papers: a one-paper library is matched as before.
        owners = np.repeat(np.repeat(np.arange(len(metas)), sizes), seed_sizes)
        model = pool.terms.models(ids, counts * np.repeat(weights, seed_sizes), owners,
                                  len(metas))[np.flatnonzero(many)]
        view = standardize(pool.terms.likelihoods(model, tuning.dirichlet))
        similarity[many[has]] += w.library * (1 - 1 / sizes[many])[:, None] * view
    # A library of a few seeds is also matched sentence by sentence, at a share of 1 / seeds.
    few = [r for r, n in enumerate(sizes[has].tolist()) if sentence_match.matched(n)]
    seeded = [m.seeds for m in metas if m.seed_names]
    split = np.split(weights, np.cumsum(sizes[has])[:-1])
    vectors = None
    if pool.vectors is not None and embed is not None and w.semantic > 0:
        vectors = embed([t for m in metas for t in m.seeds.texts])
        if math.isinf(tuning.semantic_temperature):  # the centroid: a row per reader, not seed
            centroids = np.add.reduceat(vectors * weights[:, None], offsets[has], axis=0)
            view = (centroids / sizes[has][:, None]).astype(np.float32) @ pool.vectors.T
        else:
            view = seed_soft_max(lambda a, b, scale: (vectors[a:b] * scale[:, None]) @ pool.vectors.T,
                                 *blocks, tuning.semantic_temperature, len(pool.entries))
        view = standardize(view)
        if few:
            match = sentence_match.by_sentence(pool, embed, [seeded[r].texts for r in few],
                                               [split[r] for r in few],
                                               tuning.semantic_temperature)
            n = sizes[has][few][:, None]
            view[few] = (1 - 1 / n) * view[few] + standardize(match) / n
        similarity += w.semantic * tuning.semantic_share * view
    points = pool.concepts.project(seeds)
    if pool.concepts.k and w.library > 0:
        # The soft-max's scaling folded into the seed rows (100 numbers each, not one per
        # entry): a dense product, whose result the soft-max may then overwrite.
        def product(a, b, scale):
            return (points[a:b] * scale[:, None]) @ pool.concepts.entries.T
        view = seed_soft_max(product, *blocks, tuning.concept_temperature, len(pool.entries))
        similarity += w.library * standardize(view)
        if few and vectors is None and tuning.concept_sentences > 0:  # the lexical twin, on
            # the leading entries; over the seeds at the concept view's softness: a mean would
            # favour a mix of two unrelated seeds' topics, as a centroid does
            words = [seeded[r].sentence_ids() or pool.word_ids_of(seeded[r].texts) for r in few]
            for r, (rows, match) in zip(few, sentence_match.by_concept_sentence(
                    pool, words, [split[r] for r in few],
                    tuning.concept_temperature, sentence_match.leading(similarity[few])),
                    strict=True):
                similarity[r, rows] += (w.library * tuning.concept_sentences / sizes[has][r]
                                        * standardize(match[None, :])[0])
    if vectors is not None and tuning.title_share > 0:  # the leading entries, by seed titles
        titles = embed([t for m in metas for t in m.seeds.titles])
        lead = sentence_match.leading(similarity)
        for r, (bi, match) in enumerate(zip(np.flatnonzero(has), sentence_match.by_title(
                pool, titles, sizes[has], lead), strict=True)):
            metas[bi].titled = match
            similarity[r, lead[r]] += (w.semantic * tuning.title_share
                                       * standardize(match[1].max(axis=1)[None, :])[0])
    relevance[has] = standardize(similarity)
    for m, off, size in zip(metas, offsets, sizes, strict=True):
        m.seed_terms = SeedTerms(seeds, off, size, pool.terms)
        m.seed_vectors = None if vectors is None else vectors[off:off + size]
    for bi, m in enumerate(metas):
        off, size = offsets[bi], sizes[bi]
        if m.votes and size and pool.concepts.k:  # the reader's own model, once they voted
            share = m.votes / (m.votes + tuning.vote_half)
            bad = None if m.negative is None else pool.concepts.project(m.negative)
            model = standardize(vote_model(pool.concepts, points[off:off + size], bad)[None, :])[0]
            relevance[bi] = (1 - share) * relevance[bi] + share * model


def _dislikes(relevance: np.ndarray, pool: Pool, w: RankingSettings, tuning: Tuning,
              metas: list[Reader]) -> None:
    """Closeness to 👎 items counts against: rare, so per reader."""
    for bi, m in enumerate(metas):
        if m.negative is not None:
            n = m.negative.shape[0]  # a year of 👎 is thousands: the same bounded view
            soft = tf_idf_view(pool, m.negative, np.ones(n, np.float32), np.zeros(1, np.int64),
                               np.asarray([n]), tuning.temperature)
            relevance[bi] -= w.feedback * tuning.dislike * standardize(soft)[0]


def _interests(relevance: np.ndarray, pool: Pool, w: RankingSettings,
               metas: list[Reader]) -> None:
    """Interest phrases: one product of (entries × phrases) points, sparse, and weights."""
    phrases = sorted({p for m in metas for p, _, _ in m.phrases})
    if not phrases:
        return
    column = {p: j for j, p in enumerate(phrases)}
    by_text = {p: ph for m in metas for p, _, ph in m.phrases}
    found = [by_text[p] for p in phrases]
    ends = np.cumsum([0, *(len(ph.rows) for ph in found)])
    points = sp.csc_matrix(
        (np.concatenate([ph.points for ph in found]), np.concatenate([ph.rows for ph in found]),
         ends), shape=(relevance.shape[1], len(phrases)))
    weight = np.zeros((len(phrases), len(metas)), dtype=np.float32)
    for bi, m in enumerate(metas):
        for p, wt, _ in m.phrases:
            weight[column[p], bi] += wt
    relevance += w.interests * (points @ weight).T


def _follows(relevance: np.ndarray, pool: Pool, w: RankingSettings, users: list[UserConfig],
             metas: list[Reader]) -> None:
    """Followed authors (up to two count) and categories (once), from inverted indexes."""
    n = len(pool.entries)
    for bi, (user, m) in enumerate(zip(users, metas, strict=True)):
        if m.authors:
            count = np.zeros(n, dtype=np.float32)
            for key in m.authors:
                count[pool.by_author.get(key, [])] += 1
            relevance[bi] += w.authors * AUTHOR_POINTS * np.minimum(count, 2)
        if user.categories:
            hit = np.zeros(n, dtype=bool)
            for cat in user.categories:
                hit[pool.by_category.get(cat.lower(), [])] = True
            relevance[bi] += w.categories * CATEGORY_POINTS * hit


def _decayed(relevance: np.ndarray, pool: Pool, users: list[UserConfig],
             metas: list[Reader]) -> np.ndarray:
    """Positive scores halve every half-life of age; an `exclude` match goes below any floor."""
    # Readers mostly share a half-life: one decay row per distinct one, not one per reader.
    lives, which = np.unique([max(u.half_life / 86400, 1e-6) for u in users], return_inverse=True)
    decay = np.power(np.float32(0.5), pool.age_days[None, :] / lives[:, None].astype(np.float32))
    scores = np.where(relevance > 0, relevance * decay[which], relevance).astype(np.float32)
    for bi, m in enumerate(metas):
        for _, ph in m.excluded:
            hit = ph.within(IN_ABSTRACT)
            scores[bi, hit] = scores[bi, hit] * EXCLUDE_FACTOR - EXCLUDE_PENALTY
    return scores
