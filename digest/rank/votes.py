"""A reader's own linear model, once they have voted: what scoring blends in with a share
that grows with their votes (scoring._library)."""

from __future__ import annotations

import numpy as np

from digest.rank.concepts import Concepts

VOTE_RIDGE = 1.0  # the ridge's penalty: a unit, not fitted


def vote_model(concepts: Concepts, liked: np.ndarray, disliked: np.ndarray | None,
               ) -> np.ndarray:
    """A linear model of this reader, scored on every entry: ridge regression in the pool's
    concept space (a least-squares SVM; arxiv-sanity trains an SVM per tag over TF-IDF), with
    the library and 👍 items as positives (+1), 👎 items as negatives (−1) and the pool as weak
    negatives (−1, it is mostly what the reader did not pick), the pool weighing as much as the
    positives. The pool's share of the normal equations is computed once per pool
    (Concepts.moments); per reader only the voted and seed rows are added."""
    gram, total = concepts.moments
    n_pos, n = liked.shape[0], len(concepts.entries)
    pool_weight = max(n_pos, 1) / max(n, 1)
    rows = [(liked, 1.0)] + ([(disliked, -1.0)] if disliked is not None and len(disliked) else [])
    lhs = pool_weight * gram + VOTE_RIDGE * np.eye(len(gram))
    rhs = -pool_weight * total
    for m, label in rows:
        x = np.hstack([m.astype(np.float64), np.ones((len(m), 1))])  # + intercept
        lhs += x.T @ x
        rhs += label * x.sum(axis=0)
    w = np.linalg.solve(lhs, rhs)
    return (concepts.entries @ w[:-1]).astype(np.float32)
