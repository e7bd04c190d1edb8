"""Stories: entries whose titles are near-duplicates (cross-posts, revisions) are one story, so a
digest shows each story once."""

from __future__ import annotations

import math
from collections import Counter, deque
from itertools import chain

STORY_POSTINGS = 32  # see stories()
NEAR_DUPLICATE = 0.8  # Jaccard of title words above which two picks are one story
JOIN = NEAR_DUPLICATE / (1 + NEAR_DUPLICATE)  # the same bound on |a ∩ b| / (|a| + |b|)


def stories(titles: list[frozenset]) -> list[int]:
    """Per entry, the id of its story: entries whose title words overlap by Jaccard ≥
    NEAR_DUPLICATE (x) are one story (joined transitively). Computed once per pool by PPJoin's
    prefix filtering (Xiao et al. 2008, after Bayardo et al. 2007): with each title's words in
    one global order, rarest first, and titles taken shortest first, two titles that similar
    must share a word between the first |a| − ⌈x·|a|⌉ + 1 words of the later one and the first
    |b| − ⌈2x/(1+x)·|b|⌉ + 1 of the earlier one, so only titles sharing such a word are
    compared. Postings keep only each word's latest STORY_POSTINGS titles: a title's rarest
    words are rarely that common, and where they are (titles from a tiny vocabulary) the
    comparisons would grow with the square of the pool."""
    df = Counter(chain.from_iterable(titles))
    rarity = {w: k for k, w in enumerate(sorted(df, key=lambda w: (df[w], w)))}
    parent = list(range(len(titles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sizes = [len(t) for t in titles]
    seen: dict = {}  # word → the latest titles that indexed it
    first: dict[frozenset, int] = {}  # exact repeats join their first copy directly
    for i in sorted(range(len(titles)), key=sizes.__getitem__):
        t, n = titles[i], sizes[i]
        if not n:
            continue
        if t in first:
            parent[i] = first[t]
            continue
        first[t] = i
        ordered = sorted(t, key=rarity.__getitem__)
        probe = ordered[:n - math.ceil(NEAR_DUPLICATE * n - 1e-9) + 1]
        least = NEAR_DUPLICATE * n - 1e-9  # earlier titles are no longer; shorter: too short
        for j in set().union(*[seen[w] for w in probe if w in seen]):
            # |a ∩ b| ≥ x·|a ∪ b|  ⇔  |a ∩ b| ≥ x/(1+x)·(|a| + |b|)
            m = sizes[j]
            if m >= least and len(t & titles[j]) >= JOIN * (n + m) - 1e-9 and root(j) != root(i):
                parent[root(i)] = root(j)
        for w in ordered[:n - math.ceil(2 * JOIN * n - 1e-9) + 1]:
            if w not in seen:
                seen[w] = deque(maxlen=STORY_POSTINGS)
            seen[w].append(i)
    return [root(i) for i in range(len(titles))]
