"""Why an entry is in a reader's ranking, strongest signal first: the seed paper (library
paper or 👍 entry) it is closest to, the phrases it matches, the followed authors, categories
and popularity behind it, and what demoted it. Pure: reads the built pool and the reader's
profile, worked out only for the entries shown."""

from __future__ import annotations

import numpy as np

from digest.models import StoredEntry
from digest.rank.phrases import IN_ABSTRACT, IN_TITLE
from digest.rank.pool import Pool
from digest.rank.reader import Reader
from digest.rank.select import Pick
from digest.settings import UserConfig

POPULAR_UPVOTES = 10  # "trending: N upvotes" is said from here on
SIMILAR_REASON = 0.12  # a seed paper this close (TF-IDF cosine) is named in the reasons
# A seed whose title is this close (cosine) to a sentence of the entry is named too: in
# bench_rank's pool, all of one field, 1 pair in 100 of a library title and an entry is.
TITLE_REASON = 0.6


def explain(pool: Pool, entries: list[StoredEntry], user: UserConfig, rows: list[int],
            scores: np.ndarray, meta: Reader) -> list[Pick]:
    """The entries at `rows` with their scores and reasons."""
    seeds: list[int | None] = [None] * len(rows)
    if meta.seed_names and rows:  # of the seeds close to it, the closest by words and meaning
        lexical = meta.seed_terms.cosines(rows)
        both = lexical if meta.seed_vectors is None else (
            lexical + meta.seed_vectors @ pool.vectors[rows].T)
        close = lexical >= SIMILAR_REASON
        if meta.titled is not None:  # or a seed whose title a sentence of it says, if the
            lead, match = meta.titled  # title match lifted it (it was among the leading)
            at = np.minimum(np.searchsorted(lead, rows), len(lead) - 1)
            hit = lead[at] == rows
            said = np.zeros_like(lexical)
            said[:, hit] = match[at[hit]].T
            both = both + said
            close |= said >= TITLE_REASON
        best = np.where(close, both, -np.inf).argmax(axis=0)
        seeds = [b if close[b, k] else None for k, b in enumerate(best.tolist())]
    # What each phrase says of the rows it matched, one step per phrase, not per item.
    matched = _said(rows, [(ph, lambda m, p=phrase: f'matches "{p}" in the '
                                                  f'{"title" if m == IN_TITLE else "abstract"}')
                           for phrase, _, ph in meta.phrases])
    demoted = _said(rows, [(ph, lambda m, p=phrase: f'demoted: mentions "{p}"')
                           for phrase, ph in meta.excluded])
    wanted = {c.lower() for c in user.categories}
    owned = set(meta.owned)
    values = scores[rows].tolist()
    return [Pick(i, round(values[k], 6),
                 _reasons(pool, entries[i], i, user, meta, seed, i in owned, matched[k], wanted,
                          demoted[k]), seed=seed)
            for k, (i, seed) in enumerate(zip(rows, seeds, strict=True))]


def _said(rows: list[int], phrases: list) -> list[list[str]]:
    """Per row, what each (Phrase, say(where)) says of it where the phrase stands in its
    title or abstract, in the phrases' order."""
    out: list[list[str]] = [[] for _ in rows]
    for ph, say in phrases:
        kinds = ph.at(rows)
        for k in np.flatnonzero(kinds >= IN_ABSTRACT).tolist():
            out[k].append(say(kinds[k]))
    return out


def _reasons(pool: Pool, e: StoredEntry, i: int, user: UserConfig, meta: Reader,
             seed: int | None, owned: bool, matched: list[str], wanted: set[str],
             demoted: list[str]) -> list[str]:
    """One entry's reasons. `matched` and `demoted`: what the reader's phrases and excluded
    phrases say of it (_said); `wanted`: their categories, lowercased."""
    # An owned entry only `rank --all` shows: "similar to" itself would say nothing.
    reasons = ["in your library"] if owned else [meta.seed_names[seed]] if seed is not None else []
    reasons += matched
    # Most entries are by none of the followed authors: a set operation says so at once.
    if meta.authors and not meta.authors.isdisjoint(pool.author_keys[i]):
        names = [a for a, key in zip(e.authors, pool.author_keys[i], strict=True)
                 if key in meta.authors][:2]
        reasons.append("by " + ", ".join(names))
    if wanted:
        cats = [c for c in e.categories if c.lower() in wanted]
        if cats:
            reasons.append(f"in {cats[0]}")
    if user.popularity > 0 and e.popularity >= POPULAR_UPVOTES:
        reasons.append(f"trending: {e.popularity} upvotes")
    return reasons + demoted
