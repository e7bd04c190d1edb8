"""The pool's concept space (LSA): a truncated SVD of its TF-IDF matrix, from a random start
that depends on the pool's words alone. Pure numpy and SciPy."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp

GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64's step: 2⁶⁴ / φ


def used_columns(docs: sp.csr_matrix) -> np.ndarray:
    """The term ids a pool uses, not the width of its matrix: that is the largest term id,
    which grows with every word the database has seen. A count per column, not np.unique
    (which took 14 ms over ~0.5M entries' term ids)."""
    return np.flatnonzero(np.bincount(docs.indices, minlength=docs.shape[1]))


class Concepts:
    """A latent topic space of the pool (LSA: a truncated SVD of its TF-IDF matrix). Two
    papers on one topic in different words are close here, so a library of many related papers
    lifts what they have in common. Randomized SVD (Halko, Martinsson and Tropp 2011), its
    random start a Gaussian row per term drawn from the term's own word (`words`, by column,
    for the columns used_columns gives): so the space depends on the pool alone, not on the
    order the database gave out term ids or stored the entries, and two pools that share most
    words share most of their start. Pure: no database, so it can be built in a forked child
    (background.py) while the rest of the pool is built."""

    def __init__(self, docs: sp.csr_matrix, dimensions: int, words: Mapping[int, str]):
        n, v = docs.shape
        used = used_columns(docs)
        k = min(dimensions, n // 4, len(used) // 4)
        self.k = k = k if k >= 2 else 0
        if not k:
            self.basis = np.zeros((v, 0), np.float32)
            self.entries = np.zeros((n, 0), np.float32)
            return
        a = docs.astype(np.float64)
        start = np.zeros((v, k + 10))  # rows of unused columns meet only zeros
        start[used] = gaussian_rows([words[j] for j in used.tolist()], k + 10)
        y = a @ start
        for _ in range(2):  # power iterations sharpen the top of the spectrum
            # Between them the columns need only be kept apart, not made orthonormal: an LU
            # factor spans the same space at a tenth of a QR's cost (as scikit-learn's
            # randomized_range_finder does); the last step is a QR (scipy's economic one:
            # numpy's took twice as long for the same factor).
            y = scipy.linalg.lu(y, permute_l=True, check_finite=False)[0]
            y = a @ (a.T @ y)
        q = scipy.linalg.qr(y, mode="economic", check_finite=False)[0]
        # The right singular vectors of (Qᵀ A) from the eigenvectors of its small Gram matrix:
        # the same basis as np.linalg.svd to ~1e-13, at a seventh of the time (the SVD of the
        # k × terms matrix was most of the model's cost). Directions the pool does not span
        # (a zero singular value: duplicate entries) stay zero instead of arbitrary.
        z = a.T @ q  # terms × (k + 10)
        values, vectors = np.linalg.eigh(z.T @ z)
        top = np.argsort(values)[::-1][:k]
        scale = np.sqrt(np.clip(values[top], 0, None))
        keep = scale > scale[0] * 1e-6 if scale[0] > 0 else np.zeros(k, bool)
        basis = np.zeros((v, k))
        basis[:, keep] = (z @ vectors[:, top[keep]]) / scale[keep]
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)  # terms × k
        self.entries = _unit(np.asarray(docs @ self.basis, dtype=np.float32))

    @functools.cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(XᵀX, Xᵀ1) of the entries with an intercept column: the pool's part of every
        reader's vote model (votes.vote_model), the same for all of them."""
        x = np.hstack([self.entries.astype(np.float64), np.ones((len(self.entries), 1))])
        return x.T @ x, x.sum(axis=0)

    def project(self, rows: sp.csr_matrix) -> np.ndarray:
        """Seed rows (TF-IDF) as unit vectors in the concept space."""
        if not self.k:
            return np.zeros((rows.shape[0], 0), np.float32)
        return _unit(np.asarray(rows @ self.basis, dtype=np.float32))


def gaussian_rows(texts: Sequence[str], width: int) -> np.ndarray:
    """One row of `width` standard normal numbers per text, a function of that text alone
    (the same in every process and database): SplitMix64 (Steele et al. 2014) from a hash of
    the text, each 64-bit draw two 32-bit uniforms, then Box–Muller's pair of normals."""
    keys = np.frombuffer(b"".join(hashlib.blake2b(t.encode(), digest_size=8).digest()
                                  for t in texts), dtype="<u8")
    x = keys[:, None] + np.arange(1, (width + 1) // 2 + 1, dtype=np.uint64) * np.uint64(GOLDEN)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)  # uint64 products wrap, as SplitMix64's do
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    radius = np.sqrt(-2 * np.log(((x >> np.uint64(32)).astype(np.float64) + 0.5) / 2 ** 32))
    angle = 2 * np.pi * (x & np.uint64(0xFFFFFFFF)).astype(np.float64) / 2 ** 32
    return np.hstack([radius * np.cos(angle), radius * np.sin(angle)])[:, :width]


def _unit(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms
