"""The soft-max over each reader's block of seed rows, T·log(mean(exp(w·cos/T))), computed a
bounded number of seed rows at a time. Pure numpy.

The (seed rows × entries) cosines are the largest thing ranking holds: 20 KB per seed paper at
5,000 entries, so a batch of 64 readers with 500-paper libraries held 640 MB at once, and a
lab whose readers import their whole Zotero libraries would be killed for memory on a small
server. Past SEED_CELLS cells, the blocks' sums are accumulated chunk by chunk instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# (seed row × entry) cosines held at once: 40 MB, about 2,100 seed rows at 5,000 entries. A batch of
# ordinary libraries (64 readers of ten papers) is one chunk. A memory bound, not fitted.
SEED_CELLS = 10 * (1 << 20)
# exp(w·cos/T) overflows float32 past e^88: beyond this peak the blocks' maxima come off first.
SAFE_PEAK = 80.0


def block_soft_max(sims: np.ndarray, weights: np.ndarray, offsets: np.ndarray,
                   sizes: np.ndarray, temperature: float, scaled: bool = False) -> np.ndarray:
    """The soft-max over consecutive row blocks (one block of seed rows per reader, each row's
    cosines scaled by its weight) → one row per block: T·log(mean(exp(w·s/T))). Cosines are
    at most 1, so unless w/T could overflow float32's exp, the blocks' maxima need not be
    subtracted first: that saves two of the five passes over the (seeds × entries) cells.
    `scaled`: `sims` already holds w·s/T, and may be overwritten."""
    # The (readers × entries) results are worked on in place, in the cells' own type: float32
    # cells divided by the integer sizes made float64 copies, twice the memory to fill.
    if math.isinf(temperature):  # the limit: the blocks' weighted mean
        out = block_reduce(np.add, sims * weights[:, None], offsets, sizes)
        out /= sizes[:, None].astype(out.dtype)
        return out
    peak = float(weights.max()) / temperature
    # A new array unless scaled: `sims` is kept for the reasons.
    e = sims if scaled else sims * (weights / temperature)[:, None]
    top = None
    if peak > SAFE_PEAK:
        top = block_reduce(np.maximum, e, offsets, sizes)
        e -= np.repeat(top, sizes, axis=0)
    np.exp(e, out=e)
    out = block_reduce(np.add, e, offsets, sizes)
    out /= sizes[:, None].astype(out.dtype)
    np.log(out, out=out)
    if top is not None:
        out += top
    out *= temperature
    return out


def block_reduce(ufunc: np.ufunc, cells: np.ndarray, offsets: np.ndarray,
                 sizes: np.ndarray) -> np.ndarray:
    """`ufunc` down each block of rows (rows offsets[k] … offsets[k] + sizes[k] − 1, none
    empty): one row per block, as ufunc.reduceat(cells, offsets, axis=0) gives for blocks
    that follow one another. A block at a time, because reduceat down a tall matrix is slow:
    1,300 rows × 5,000 entries summed into 64 blocks took 14 ms with it and 2 ms so."""
    out = np.empty((len(sizes), cells.shape[1]), cells.dtype)
    for k, (a, n) in enumerate(zip(offsets.tolist(), sizes.tolist(), strict=True)):
        ufunc.reduce(cells[a:a + n], axis=0, out=out[k])
    return out


def seed_soft_max(product: Callable[[int, int, np.ndarray], np.ndarray], weights: np.ndarray,
                  offsets: np.ndarray, sizes: np.ndarray, temperature: float,
                  entries: int) -> np.ndarray:
    """block_soft_max of the cosines `product(a, b, scale)` gives for seed rows a … b − 1, each
    row times its `scale` (a new float32 array, (b − a) × `entries`). Up to SEED_CELLS cells,
    in one product, as block_soft_max; past that, a chunk of rows at a time, each block's sum
    (and, where exp could overflow, first its maximum) accumulated across chunks."""
    rows = len(weights)
    inf = math.isinf(temperature)
    scale = weights if inf else weights / temperature
    step = max(1, SEED_CELLS // max(entries, 1))
    if rows <= step:
        if inf:
            return block_soft_max(product(0, rows, np.ones_like(weights)), weights, offsets,
                                  sizes, temperature)
        return block_soft_max(product(0, rows, scale), weights, offsets, sizes, temperature,
                              scaled=True)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    chunks = [(a, min(a + step, rows)) for a in range(0, rows, step)]

    def blocks(a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The readers whose rows are in a … b − 1, where each one's rows start there, and
        how many there are."""
        own = owner[a:b]
        starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
        return own[starts], starts, np.diff(starts, append=b - a)

    top = None
    if not inf and float(weights.max()) / temperature > SAFE_PEAK:  # one pass more, rarely
        for a, b in chunks:
            who, starts, counts = blocks(a, b)
            peak = block_reduce(np.maximum, product(a, b, scale[a:b]), starts, counts)
            if top is None:
                top = np.full((len(sizes), peak.shape[1]), -np.inf, np.float32)
            top[who] = np.maximum(top[who], peak)
    total = None
    for a, b in chunks:
        e = product(a, b, scale[a:b])
        who, starts, counts = blocks(a, b)
        if not inf:
            if top is not None:
                e -= top[owner[a:b]]
            np.exp(e, out=e)
        if total is None:
            total = np.zeros((len(sizes), e.shape[1]), np.float32)
        total[who] += block_reduce(np.add, e, starts, counts)
    total /= sizes[:, None].astype(total.dtype)
    if inf:
        return total
    np.log(total, out=total)
    if top is not None:
        total += top
    total *= temperature
    return total
