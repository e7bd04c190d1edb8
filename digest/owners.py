"""Who holds a claim: the owner ids of runs that take rows other runs must not (the delivery
ledger's rows, ledger.py; texts being embedded, semantic.py), and whether such a run is gone."""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """An owner id that tells an operator where the run was: host, pid, and a random part so
    that a reused pid is a different owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_process(owner: str) -> tuple[str, int] | None:
    """(host, pid) of an owner id made by new_owner."""
    parts = owner.split(":")
    return (parts[0], int(parts[1])) if len(parts) == 3 and parts[1].isdigit() else None


def owner_pid(owner: str) -> str:
    parts = owner.split(":")
    return f"pid {parts[1]} on {parts[0]}" if len(parts) == 3 else owner or "an unknown run"


def gone(owner: str) -> bool:
    """Whether the run is known to have stopped: it ran on this host, in another process,
    and no process has its pid. A run on another host, or a pid reused since, counts as
    alive: its lease ends its hold instead."""
    where = owner_process(owner)
    if not where or where[0] != socket.gethostname() or where[1] == os.getpid():
        return False
    try:
        os.kill(where[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False
