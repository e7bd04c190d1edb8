"""How often Python's garbage collector runs while readers are ranked.

Each shown item makes dozens of small objects, and at Python's default thresholds (a young
collection every 700) the older generations were collected often enough to walk the
highlights' caches over and over: a quarter of ranking's time (benchmarks/bench_rank.py). The
setting holds from a ranking's start to its end (Ranker.rank_many), the caller's work between
the readers it yields included: held only around each batch, the parent of forked workers
ranked 1,000 readers about a tenth slower (10 alternated pairs). The settings are the
process's, so rankings open at once (two generators, preview pages in threads) count who is
inside: the last one out, in whatever order, restores what was there before.

Each ranking also freezes what exists when it starts (gc.freeze): the built model is a large
heap of long-lived objects that a full collection would walk every time, and in forked workers
would copy page by page (gc.freeze's documented use before a fork). They are unfrozen when the
last ranking ends, not the first: one ranking ending must not unfreeze another's model."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

GC_THRESHOLD = (50_000, 20, 20)  # a young collection every 50,000 new objects does about as well as none

# The collector's settings are the process's, so who is inside is too.
_lock = threading.Lock()
_inside = 0
_before: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """GC_THRESHOLD, and what exists now frozen, while the block runs; the thresholds from
    before, nothing frozen, once the last of the blocks running at once (in any thread) ends."""
    global _inside, _before
    with _lock:
        if _inside == 0:
            _before = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLD)
        _inside += 1
        gc.freeze()  # this block's model too, if another block froze before it was built
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                gc.set_threshold(*_before)
                gc.unfreeze()
