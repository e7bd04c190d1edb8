"""What a digest holds, from a reader's scores: the best items above the floor, one per story,
then the most popular items not chosen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from digest.rank.pool import Pool

Pick = tuple[int, float, list[str], bool]  # entry index, score, reasons, trending


@dataclass(frozen=True)
class Selection:
    """A digest's shape. limit None: each reader's max_items."""

    limit: int | None
    min_score: float
    trending: int


def select(pool: Pool, idx: np.ndarray, scores: np.ndarray, limit: int, selection: Selection,
           explain: Callable[[list[int]], list[Pick]]) -> list[Pick]:
    """The best `limit` of the entries at `idx` scoring at least min_score, near-duplicate
    titles collapsed, then up to `trending` of the most popular entries not chosen.
    `explain(rows)` gives the picks (scores and reasons) of entry rows."""
    story = pool.story
    above = idx[scores[idx] >= selection.min_score]
    chosen: list[int] = []
    told: set[int] = set()  # stories already in the digest: one item each
    # Sort only a head of the candidates; sort the rest only if near-duplicates ate it.
    for order in ordered(pool, above, scores, 4 * limit) if limit > 0 else ():
        for i in order.tolist():
            if story[i] not in told:
                chosen.append(i)
                told.add(story[i])
                if len(chosen) >= limit:
                    break
        if len(chosen) >= limit:
            break
    out = explain(chosen)
    trending = selection.trending
    if trending:
        taken = set(chosen)
        allowed = None if len(idx) == len(pool.entries) else set(idx.tolist())
        for i in pool.by_popularity:  # most popular first, ties by id; shared by readers
            if trending == 0 or pool.popularity[i] <= 0:
                break
            if int(i) in taken or (allowed is not None and int(i) not in allowed):
                continue
            ((_, score, reasons, _),) = explain([int(i)])
            if not any(x.startswith("trending:") for x in reasons):
                reasons.append(f"trending: {pool.entries[i].popularity} upvotes")
            out.append((int(i), score, reasons, True))
            trending -= 1
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
