"""The forked processes that rank batches of readers (Ranker.rank_many with workers > 1):
each shares the parent's built model copy-on-write and sends back only its results."""

from __future__ import annotations

from pathlib import Path

from threadpoolctl import threadpool_limits

from digest.rank.select import Pick, Selection
from digest.store import Store

# Set once per forked child by the pool initializer; the parent never reads it.
_WORKER: dict = {}


def worker_init(ranker, batches: list, limit: int | None, selection: Selection | None) -> None:
    """`ranker` is the parent's Ranker, inherited through the fork (this module does not import
    ranker.py, which imports it)."""
    # The inherited SQLite connection belongs to the parent: keep it referenced (closing it
    # here could checkpoint and remove the parent's WAL) and open this process's own.
    # One BLAS thread per process: several spinning OpenBLAS pools per core thrash.
    _WORKER["blas"] = threadpool_limits(1)
    _WORKER["inherited"] = ranker.store
    ranker.store = ranker.pool.store = Store(ranker.store.path)
    if ranker.embedder is not None:
        ranker.embedder.store = ranker.store
    _WORKER.update(ranker=ranker, batches=batches, limit=limit, selection=selection)


def worker_batch(b: int) -> tuple[list[list[Pick]], dict[Path, list[str]]]:
    ranker = _WORKER["ranker"]
    ranker.library_warnings = {}
    results = ranker._rank_batch(_WORKER["batches"][b], _WORKER["limit"], _WORKER["selection"])
    return results, ranker.library_warnings
