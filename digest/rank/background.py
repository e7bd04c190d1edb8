"""Part of the pool model built in a thread while this one builds the rest.

The concept space is about half of building the pool model and needs nothing of the rest;
most of its time is sparse and dense products that release the GIL. With a second core for
ranking (workers > 1) it is computed in a thread meanwhile. A forked child was tried instead:
it gained almost nothing, because every page this process wrote while the child lived was
copied first (copy-on-write: 27,000 more page faults building the pool of 5,000 entries)."""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
# While a thread computes, how long the one holding the GIL may keep it (Python's default is
# 5 ms). The thread needs the GIL back between its products, a few dozen times, and at 5 ms
# each wait it gained 0.04 s of the concept space's 0.23 s; at 0.5 ms, 0.18 s
# (benchmarks/bench_rank.py's pool). Not fitted: any value well under a product's time.
SWITCH_INTERVAL = 0.0005

_lock = threading.Lock()
_running = 0
_interval = 0.0


class Later(Generic[T]):
    """fn(*args), computed in a thread started now when `parallel`, else at result(). fn
    must not use the database: a connection belongs to the thread that opened it. One BLAS
    thread either way, so both give the same numbers (OpenBLAS's sums differ in their last
    bits between thread counts) and the products leave the other core to this thread."""

    def __init__(self, parallel: bool, fn: Callable[..., T], *args) -> None:
        self._fn, self._args = fn, args
        self._thread: threading.Thread | None = None
        self._value: T | None = None
        self._error: BaseException | None = None
        if parallel:
            _quicker_switches()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def result(self) -> T:
        if self._thread is None:
            return _computed(self._fn, self._args)
        self._thread.join()
        _give_back()
        if self._error is not None:
            raise self._error
        return self._value

    def _run(self) -> None:
        try:
            self._value = _computed(self._fn, self._args)
        except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
            self._error = e
        finally:
            _usual_switches()


def _computed(fn: Callable[..., T], args: tuple) -> T:
    with threadpool_limits(1, user_api="blas"):  # not torch's: it may be embedding meanwhile
        return fn(*args)


def _give_back() -> None:
    """Return to the system what the finished thread freed. glibc gives each thread a malloc
    arena of its own and keeps what is freed there (about 25 MB after the concept space of
    5,000 entries): the peak memory of ranking 1,000 readers rose 248 → 282 MiB, since every
    forked worker counts those pages; trimmed, 259 MiB, in ~4 ms. Not glibc: nothing to do."""
    try:
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # the symbols already loaded
    except (OSError, TypeError):
        return
    if trim is not None:
        trim(0)


def _quicker_switches() -> None:
    """SWITCH_INTERVAL while any Later computes (the process's setting: the first in saves
    it, the last out restores it)."""
    global _running, _interval
    with _lock:
        if not _running:
            _interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval, SWITCH_INTERVAL))
        _running += 1


def _usual_switches() -> None:
    global _running
    with _lock:
        _running -= 1
        if not _running:
            sys.setswitchinterval(_interval)
