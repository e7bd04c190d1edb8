"""What a digest holds, from a reader's scores: the best items above the floor, one per story,
each in the first of the reader's sections it fits that has room; then one surprise from
outside their profile, if they asked for it; then the most popular items not chosen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from digest.models import MORE_FOR_YOU, SURPRISE
from digest.rank.phrases import IN_ABSTRACT
from digest.rank.pool import Phrase, Pool
from digest.rank.seeds import author_key
from digest.settings import UserConfig


class Pick(NamedTuple):
    row: int  # entry index in the pool
    score: float
    reasons: list[str]
    trending: bool = False
    section: str = ""  # "" when the reader has no sections (the view says "For you")
    seed: int | None = None  # the reader's seed paper named in the reasons
    highlight: object = None  # highlight.Highlight of the abstract, for the items shown


@dataclass(frozen=True)
class Sections:
    """A reader's sections in order: titles, quotas (None: no cap) and `fits(row)`, the
    indexes of the sections an entry matches."""

    titles: tuple[str, ...]
    quotas: tuple[int | None, ...]
    fits: Callable[[int], list[int]]


@dataclass(frozen=True)
class Selection:
    """A digest's shape. limit None: each reader's max_items."""

    limit: int | None
    min_score: float
    trending: int


def select(pool: Pool, idx: np.ndarray, scores: np.ndarray, limit: int, selection: Selection,
           explain: Callable[[list[int]], list[Pick]], sections: Sections | None = None,
           surprise: int = 0) -> list[Pick]:
    """The best `limit` of the entries at `idx` scoring at least min_score, near-duplicate
    titles collapsed, then `surprise` popular entries far from the profile, then up to
    `trending` of the most popular entries not chosen. With `sections`, an entry goes to the
    first section it fits that has room; one whose sections are all full is passed over (its
    topic is capped), one fitting none goes to MORE_FOR_YOU. `explain(rows)` gives the picks
    (scores and reasons) of entry rows."""
    story = pool.story
    above = idx[scores[idx] >= selection.min_score]
    chosen: list[int] = []
    placed: list[str] = []
    used = [0] * len(sections.titles) if sections else []
    told: set[int] = set()  # stories already in the digest: one item each
    # Sort only a head of the candidates; sort the rest only if near-duplicates or full
    # sections ate it.
    for order in ordered(pool, above, scores, 4 * limit) if limit > 0 else ():
        for i in order.tolist():
            if story[i] in told:
                continue
            where = ""
            if sections:
                fits = sections.fits(i)
                room = [k for k in fits if sections.quotas[k] is None or used[k] < sections.quotas[k]]
                if fits and not room:
                    continue
                where = sections.titles[room[0]] if room else MORE_FOR_YOU
                if room:
                    used[room[0]] += 1
            chosen.append(i)
            placed.append(where)
            told.add(story[i])
            if len(chosen) >= limit:
                break
        if len(chosen) >= limit:
            break
    taken = set(chosen)
    # The rows a reader may be offered, as a mask: a set of every row costs more than the
    # few look-ups made in it.
    allowed = None
    if len(idx) != len(pool.entries):
        allowed = np.zeros(len(pool.entries), dtype=bool)
        allowed[idx] = True
    surprises = _surprises(pool, surprise, taken, told, allowed, explain) if surprise and len(idx) else []
    popular: list[int] = []
    for i in pool.by_popularity if selection.trending else ():  # most popular first, ties by id
        if len(popular) == selection.trending or pool.popularity[i] <= 0:
            break
        if int(i) not in taken and (allowed is None or allowed[i]):
            popular.append(int(i))
    # The chosen and the trending explained together: explain has a cost per call.
    picks = explain(chosen + popular)
    out = [Pick(p.row, p.score, p.reasons, p.trending, where, p.seed, p.highlight)
           for p, where in zip(picks[:len(chosen)], placed, strict=True)] + surprises
    for pick in picks[len(chosen):]:
        if not any(x.startswith("trending:") for x in pick.reasons):
            pick.reasons.append(f"trending: {pool.entries[pick.row].popularity} upvotes")
        out.append(pick._replace(trending=True))
    return out


def _surprises(pool: Pool, want: int, taken: set[int], told: set[int],
               allowed: np.ndarray | None, explain) -> list[Pick]:
    """The most popular entries of the window that are far from everything the reader
    follows: matching none of their phrases, authors or categories and close to none of their
    seed papers (explain gives them no reason but popularity). So a profile does not close in
    on itself. Not the score: popularity is part of it."""
    out: list[Pick] = []
    candidates = []
    for i in pool.by_popularity[:2000].tolist():  # bounded: a pool can be large
        if pool.popularity[i] <= 0:
            break
        if i not in taken and pool.story[i] not in told and (allowed is None or allowed[i]):
            candidates.append(i)
    for start in range(0, len(candidates), 32):  # explained a few at a time, not one by one
        for pick in explain(candidates[start:start + 32]):
            if len(out) >= want:
                return out
            if any(not r.startswith("trending:") for r in pick.reasons):
                continue  # something of the profile matched it
            taken.add(pick.row)
            out.append(pick._replace(section=SURPRISE, reasons=[
                f"something different: {pool.entries[pick.row].popularity} upvotes, and far "
                "from what you follow"]))
    return out


def ordered(pool: Pool, rows: np.ndarray, scores: np.ndarray, head: int) -> Iterator[np.ndarray]:
    """Entry indexes `rows` best first (ties by id), in blocks: the best `head`, then the next
    best 3·head, and so on. A digest usually needs only the first; copies of one story
    (cross-posts, revisions) can eat it, so the next is sorted only when needed, and never all
    of a large pool at once."""
    minus = -scores[rows]
    done = 0
    while done < len(rows):
        want = min(len(rows), 4 * done or head)
        # Everything scoring at least the want-th best: ties at the cut are all in, so each
        # block continues the previous one exactly.
        top = rows if want == len(rows) else rows[minus <= np.partition(minus, want - 1)[want - 1]]
        block = top[np.lexsort((pool.id_order[top], -scores[top]))]
        yield block[done:]
        done = len(block)


def unmuted(pool: Pool, idx: np.ndarray, hidden: list[Phrase], muted_authors: frozenset[str],
            ) -> np.ndarray:
    """The rows at `idx` less those a reader muted: by a muted author or mentioning a muted
    phrase (in the title or abstract)."""
    if not (hidden or muted_authors) or not len(idx):
        return idx
    keep = np.ones(len(idx), dtype=bool)
    for ph in hidden:
        keep &= ph.at(idx) < IN_ABSTRACT
    if muted_authors:
        keys = pool.author_keys
        keep &= np.fromiter((muted_authors.isdisjoint(keys[i]) for i in idx.tolist()),
                            dtype=bool, count=len(idx))
    return idx[keep]


def sections_of(pool: Pool, user: UserConfig) -> Sections | None:
    """The reader's [sections] as select() takes them: an entry fits a section when one of its
    `match` strings is one of the entry's categories, one of its authors, or a phrase in its
    title or abstract."""
    if not user.sections:
        return None
    specs = [(frozenset(m.lower() for m in s.match), frozenset(author_key(m) for m in s.match),
              # The entries with one of the phrases in their title or abstract, as a set:
              # fits() asks one entry at a time.
              frozenset().union(*(pool.phrase(m).within(IN_ABSTRACT).tolist() for m in s.match)))
             for s in user.sections]
    entries, keys = pool.entries, pool.author_keys

    def fits(i: int) -> list[int]:
        cats = {c.lower() for c in entries[i].categories}
        return [k for k, (names, authors, rows) in enumerate(specs)
                if not names.isdisjoint(cats) or not authors.isdisjoint(keys[i]) or i in rows]

    return Sections(tuple(s.title for s in user.sections),
                    tuple(s.max for s in user.sections), fits)
