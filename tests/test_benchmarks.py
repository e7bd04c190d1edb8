"""The benchmarks' own hygiene: one killed halfway leaves nothing running behind it, so the
next measurement does not share the machine (or a port) with its workers and servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the parent-death signal is Linux's")

# The parent starts a child the way the benchmarks do, prints its pid, then waits on it.
SPAWNED = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from common import fresh_processes
with fresh_processes() as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120).result()
"""
POPENED = """
import subprocess, sys
sys.path.insert(0, sys.argv[1])
from common import ends_with_this_process
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         preexec_fn=ends_with_this_process())
print(child.pid, flush=True)
child.wait()
"""


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.parametrize("script", [SPAWNED, POPENED], ids=["process pool", "subprocess"])
def test_a_killed_benchmark_takes_its_children_with_it(script):
    parent = subprocess.Popen([sys.executable, "-c", script, str(BENCHMARKS)],
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert running(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while running(child) and time.monotonic() < deadline:  # bounded: the signal is async
            time.sleep(0.05)
        assert not running(child), "the child outlived its killed parent"
    finally:
        parent.kill()
        if child is not None and running(child):
            os.kill(child, signal.SIGKILL)
