"""The forked processes that rank batches of readers (Ranker.rank_many with workers > 1):
each shares the parent's built model copy-on-write and sends back only its results."""

from __future__ import annotations

from pathlib import Path

from digest.models import Highlight
from digest.rank.select import Pick, Selection
from digest.store import Store

# Set once per forked child by the pool initializer; the parent never reads it.
_WORKER: dict = {}


def worker_init(ranker, batches: list, limit: int | None, selection: Selection | None) -> None:
    """`ranker` is the parent's Ranker, inherited through the fork (this module does not import
    ranker.py, which imports it)."""
    # The inherited SQLite connection belongs to the parent: keep it referenced (closing it
    # here could checkpoint and remove the parent's WAL) and open this process's own.
    # One BLAS thread per process, inherited from the parent (Ranker._forked) rather than set
    # here: setting it starts OpenBLAS's thread pool (one thread per BLAS library loaded) in
    # a process that never uses it, and those threads spin for tens of milliseconds before
    # they sleep, on the cores the workers rank on.
    _WORKER["inherited"] = ranker.store
    ranker.store = ranker.pool.store = Store(ranker.store.path)
    if ranker.embedder is not None:
        ranker.embedder.store = ranker.store
    _WORKER.update(ranker=ranker, batches=batches, limit=limit, selection=selection)


def worker_batch(b: int) -> tuple[list[list[tuple]], dict[Path, list[str]]]:
    """Batch b's picks, per reader, as plain() tuples, and the library warnings said."""
    ranker = _WORKER["ranker"]
    ranker.library_warnings = {}
    results = ranker._rank_batch(_WORKER["batches"][b], _WORKER["limit"], _WORKER["selection"])
    return [list(map(plain, picks)) for picks in results], ranker.library_warnings


# What goes back to the parent is pickled: a Pick as a tuple of builtins, not a NamedTuple
# holding a dataclass, pickles in a quarter of the time and unpickles in a fifth (a batch of
# 64 readers: 6.2 → 1.6 ms and 13 → 2.4 ms), time the parent spent beside the workers.
def plain(p: Pick) -> tuple:
    h = p.highlight
    return (p.row, p.score, p.reasons, p.trending, p.section, p.seed,
            None if h is None else h.text, None if h is None else h.marks)


def pick(t: tuple) -> Pick:
    """plain()'s tuple as the Pick it was."""
    return Pick(*t[:6], None if t[6] is None else Highlight(t[6], t[7]))
