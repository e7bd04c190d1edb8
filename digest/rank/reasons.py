"""Why an entry is in a reader's ranking, strongest signal first: the seed paper (library
paper or 👍 entry) it is closest to, the phrases it matches, the followed authors, categories
and popularity behind it, and what demoted it. Pure: reads the built pool and the reader's
profile, worked out only for the entries shown."""

from __future__ import annotations

import numpy as np

from digest.models import StoredEntry
from digest.rank.phrases import IN_ABSTRACT, IN_TITLE
from digest.rank.pool import Pool
from digest.rank.scoring import Reader
from digest.rank.select import Pick
from digest.settings import UserConfig

POPULAR_UPVOTES = 10  # "trending: N upvotes" is said from here on
SIMILAR_REASON = 0.12  # a seed paper this close (TF-IDF cosine) is named in the reasons


def explain(pool: Pool, entries: list[StoredEntry], user: UserConfig, rows: list[int],
            scores: np.ndarray, meta: Reader) -> list[Pick]:
    """The entries at `rows` with their scores and reasons."""
    seeds: list[int | None] = [None] * len(rows)
    if meta.seed_names and rows:  # the closest seed, by words and meaning, if close
        lexical = meta.seed_terms.cosines(pool.terms.docs, rows)
        both = lexical if meta.seed_vectors is None else (
            lexical + meta.seed_vectors @ pool.vectors[rows].T)
        best = both.argmax(axis=0)
        close = lexical[best, np.arange(len(rows))] >= SIMILAR_REASON
        seeds = [b if c else None for b, c in zip(best.tolist(), close, strict=True)]
    # Where each phrase matched, for all the rows in one step per phrase, not per item.
    found = [(phrase, ph.at(rows).tolist()) for phrase, _, ph in meta.phrases]
    demoted = [(phrase, ph.at(rows).tolist()) for phrase, ph in meta.excluded]
    values = scores[rows].tolist()
    return [Pick(i, round(values[k], 6),
                 _reasons(pool, entries[i], i, user, meta, seed, [(p, m[k]) for p, m in found],
                          [(p, m[k]) for p, m in demoted]), seed=seed)
            for k, (i, seed) in enumerate(zip(rows, seeds, strict=True))]


def _reasons(pool: Pool, e: StoredEntry, i: int, user: UserConfig, meta: Reader,
             seed: int | None, phrases: list[tuple[str, int]],
             excluded: list[tuple[str, int]]) -> list[str]:
    """One entry's reasons. `phrases` and `excluded`: where each of the reader's phrases
    matched it (phrases.IN_TITLE …)."""
    # An owned entry only `rank --all` shows: "similar to" itself would say nothing.
    owned = i in meta.owned
    reasons = ["in your library"] if owned else [meta.seed_names[seed]] if seed is not None else []
    for phrase, match in phrases:
        if match >= IN_ABSTRACT:
            where = "title" if match == IN_TITLE else "abstract"
            reasons.append(f'matches "{phrase}" in the {where}')
    if meta.authors:
        names = [a for a, key in zip(e.authors, pool.author_keys[i], strict=True)
                 if key in meta.authors][:2]
        if names:
            reasons.append("by " + ", ".join(names))
    if user.categories:
        wanted = {c.lower() for c in user.categories}
        cats = [c for c in e.categories if c.lower() in wanted]
        if cats:
            reasons.append(f"in {cats[0]}")
    if user.popularity > 0 and e.popularity >= POPULAR_UPVOTES:
        reasons.append(f"trending: {e.popularity} upvotes")
    for phrase, match in excluded:
        if match >= IN_ABSTRACT:
            reasons.append(f'demoted: mentions "{phrase}"')
    return reasons
