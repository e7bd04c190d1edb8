"""Delivery under the faults real servers and real operators produce: an SMTP server on
127.0.0.1 that misbehaves on cue, the demo's project plus more readers, `digest send` and
`digest run` as real processes, and a tally per reader and date of what arrived and what
`digest check` reports.

tests/test_faults.py runs each scenario small; benchmarks/bench_faults.py runs the full table.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from aiosmtpd.controller import Controller

from digest import demo
from digest.config import load_config
from digest.deliver import backend_for
from digest.poll import poll
from digest.send import send_digests
from digest.store import Store

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<(\d{4}-\d\d-\d\d)\.", re.M | re.I)
# A run that met a row another run held or had just settled: `send` output, `run` log.
_HELD = re.compile(r"another run is sending it|: busy, |: already, ")
_LOST = re.compile(r"the digest of (\S+) for (\d{4}-\d\d-\d\d) is unconfirmed")
BOUND = 120  # seconds any one process may take before the scenario fails


class FaultySmtp:
    """Stores every message it receives, as a real server does, and then misbehaves as told:
    `slow` seconds before storing, `reply_delay` seconds before its reply (past the client's
    timeout: the message is stored, the client never hears), `drop` the connection instead of
    replying, `greylist` each recipient's first RCPT with a 451, and `on_store(count)` (called
    after storing, before the reply: the place to kill a client)."""

    def __init__(self):
        self.stored: list[tuple[str, str]] = []  # (recipient, local date from Message-ID)
        self.lock = threading.Lock()
        self.slow = 0.0
        self.reply_delay = 0.0
        self.drop = False
        self.greylist = False
        self.greylisted = threading.Event()
        self._seen: set[str] = set()
        self.on_store: Callable[[int], None] | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.greylist and address not in self._seen:
            self._seen.add(address)
            self.greylisted.set()
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.slow:
            await asyncio.sleep(self.slow)
        m = _MESSAGE_ID.search(envelope.original_content or envelope.content)
        with self.lock:
            self.stored.append((envelope.rcpt_tos[0], m.group(1).decode() if m else "?"))
            count = len(self.stored)
        if self.on_store:
            self.on_store(count)
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if self.drop:
            server.transport.close()
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.stored)


class Server:
    def __init__(self):
        self.handler = FaultySmtp()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port)

    def __enter__(self) -> FaultySmtp:
        self.controller.start()
        self.handler.port = self.controller.port
        return self.handler

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def make_project(root: Path, port: int, extra_readers: int = 12, *, timeout: float = 10,
                 retries: int = 3, retry_wait: str = "1s", digest: str = "") -> Path:
    """The demo's feeds and three readers, `extra_readers` more, [smtp] on `port`, and every
    reader mailed every day (empty_day = "send"); polled once."""
    root.mkdir(parents=True, exist_ok=True)
    path = demo.write(root, datetime.now(UTC))
    text = path.read_text().replace("[digest]\n", f'[digest]\nempty_day = "send"\n{digest}\n', 1)
    text = text.replace("[ranking]\n", f'[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                        'security = "none"\nfrom = "Demo digest <digest@example.org>"\n'
                        f'timeout = {timeout}\nretries = {retries}\nretry_wait = "{retry_wait}"\n\n'
                        "[ranking]\n", 1)
    for i in range(extra_readers):
        text += (f'\n[users.reader{i:02d}]\nemail = "reader{i:02d}@example.org"\n'
                 f'[users.reader{i:02d}.interests]\n"attention" = 1\n')
    path.write_text(text)
    config = load_config(path)
    with Store(config.digest.database) as store:
        poll(config, store)
    return path


def digest(path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "digest", "--config", str(path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=BOUND)
    if "Traceback" in out or "internal error" in out:
        raise AssertionError(f"digest crashed:\n{out}")
    return out


def rerun_until_done(path: Path, day: str, rounds: int = 5) -> list[str]:
    """`digest send --date DAY` again until it sends nothing and nothing is busy (the operator
    after a fault). Any rerun that sends must send only what never went out."""
    outputs = []
    for _ in range(rounds):
        out = finish(digest(path, "send", "--date", day))
        outputs.append(out)
        if "sent to SMTP" not in out and "another run is sending" not in out:
            return outputs
    raise AssertionError(f"still sending after {rounds} reruns:\n{outputs[-1]}")


@dataclass
class Tally:
    """Per reader and date: how many copies arrived, and whether `digest check` names it."""

    reader_dates: int = 0
    messages: int = 0
    duplicates: int = 0  # copies beyond the first
    unconfirmed: int = 0  # reader-dates check names as unconfirmed
    silent: int = 0  # reader-dates with no message that check does not name
    overlaps: int = 0  # times a first-pass run found a row held by another (the race happened)
    problems: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> Tally:
        for k in ("reader_dates", "messages", "duplicates", "unconfirmed", "silent", "overlaps"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.problems += other.problems
        return self


def tally(path: Path, server: FaultySmtp, days: list[str] | None = None,
          outputs: list[str] = (), pairs: list[tuple[str, str]] | None = None) -> Tally:
    """Count, for every reader and each of `days` (or the given (reader, date) `pairs`)."""
    config = load_config(path)
    check = subprocess.run([sys.executable, "-m", "digest", "--config", str(path), "check"],
                           capture_output=True, text=True, timeout=BOUND)
    named = set(_LOST.findall(check.stderr))
    copies = Counter(server.stored)
    pairs = pairs or [(u, d) for u in config.users for d in days or []]
    t = Tally(overlaps=sum(len(_HELD.findall(o)) for o in outputs))
    for reader, d in pairs:
        n, said = copies[config.users[reader].email, d], (reader, d) in named
        t.reader_dates += 1
        t.messages += n
        t.duplicates += max(0, n - 1)
        t.unconfirmed += said
        if n == 0 and not said:
            t.silent += 1
            t.problems.append(f"{reader} {d}: no message and not reported")
        if n > 1:
            t.problems.append(f"{reader} {d}: {n} copies")
    return t


def dates(start: int, n: int) -> list[str]:
    return [(date(2026, 1, 1) + timedelta(days=start + i)).isoformat() for i in range(n)]


# -- the scenarios ---------------------------------------------------------------------------

def concurrent_sends(root: Path, rounds: int = 3, extra_readers: int = 12) -> Tally:
    """Two `digest send` for the same date started together, then reruns."""
    with Server() as server:
        path = make_project(root, server.port, extra_readers)
        days, outputs = dates(0, rounds), []
        for d in days:
            pair = [digest(path, "send", "--date", d) for _ in range(2)]
            outputs += [finish(p) for p in pair]
            rerun_until_done(path, d)
        return tally(path, server, days, outputs)


def late_reply(root: Path, extra_readers: int = 12) -> Tally:
    """The server stores each message, then replies only after the client's timeout."""
    with Server() as server:
        path = make_project(root, server.port, extra_readers, timeout=0.5, retries=5)
        server.reply_delay = 1.0
        (d,) = dates(10, 1)
        outputs = [finish(digest(path, "send", "--date", d))]
        rerun_until_done(path, d)
        return tally(path, server, [d], outputs)


def drop_after_storing(root: Path, extra_readers: int = 12) -> Tally:
    """The server stores each message, then closes the connection instead of replying."""
    with Server() as server:
        path = make_project(root, server.port, extra_readers)
        server.drop = True
        (d,) = dates(20, 1)
        outputs = [finish(digest(path, "send", "--date", d))]
        rerun_until_done(path, d)
        return tally(path, server, [d], outputs)


def greylisting(root: Path, extra_readers: int = 12) -> Tally:
    """Each recipient's first RCPT gets a 451; a second `digest send` (a real process) is
    started and run to its end during the first run's retry wait."""
    with Server() as server:
        path = make_project(root, server.port, extra_readers, retry_wait="1s")
        server.greylist = True
        (d,) = dates(30, 1)
        config = load_config(path)
        outputs: list[str] = []

        def wait(seconds: float) -> None:
            if not outputs:  # the first wait: the overlapping run, start to end
                outputs.append(finish(digest(path, "send", "--date", d)))
            time.sleep(seconds)

        with Store(config.digest.database) as store:
            send_digests(config, store, list(config.users.values()), date.fromisoformat(d),
                         datetime.now(UTC),
                         backend_for(config), sleep=wait)
        rerun_until_done(path, d)
        return tally(path, server, [d], outputs)


def killed_mid_run(root: Path, rounds: int = 5, extra_readers: int = 17,
                   seed: int = 1) -> Tally:
    """SIGKILL of `digest send` mid-run, then reruns. Odd rounds kill it right after the
    server stored the k-th message (between DATA and 'sent'), even rounds at a random moment
    after the first message."""
    rng = random.Random(seed)
    with Server() as server:
        path = make_project(root, server.port, extra_readers)
        readers = 3 + extra_readers
        server.slow = 0.02
        days, outputs = dates(40, rounds), []
        for i, d in enumerate(days):
            proc = digest(path, "send", "--date", d)
            before = server.count()
            if i % 2 == 0:
                k = before + rng.randint(1, readers)
                server.on_store = lambda n, k=k, pid=proc.pid: (
                    os.kill(pid, signal.SIGKILL) if n == k else None)
            else:
                deadline = time.monotonic() + BOUND
                while server.count() == before and proc.poll() is None:  # bounded
                    if time.monotonic() > deadline:
                        raise AssertionError("the run sent nothing")
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, readers * server.slow))
                proc.kill()
            proc.wait(timeout=BOUND)  # reaped: its pid is gone, as after a real crash
            server.on_store = None
            outputs += rerun_until_done(path, d)[:1]  # the first rerun meets the dead run's rows
        return tally(path, server, days, outputs)


def run_races_send(root: Path, extra_readers: int = 12) -> Tally:
    """`digest send` of each reader's today starts the moment `digest run` starts its first
    tick (the catch-up: yesterday's digests, then today's)."""
    with Server() as server:
        path = make_project(root, server.port, extra_readers,
                            digest='send_time = "00:00"\ncatch_up = "2d"')
        config = load_config(path)
        now = datetime.now(UTC)
        pairs = [(u.name, (now.astimezone(ZoneInfo(u.timezone)).date() - timedelta(days=k))
                  .isoformat()) for u in config.users.values() for k in (0, 1)]
        server.slow = 0.05  # the run's catch-up of yesterday is still going when send starts
        run = digest(path, "run")
        log = _read_until(run, "digest run: started")
        outputs = [finish(digest(path, "send"))]
        deadline = time.monotonic() + BOUND
        while server.count() < len(pairs) and time.monotonic() < deadline:  # bounded
            time.sleep(0.05)
        time.sleep(0.3)  # a late duplicate would land now
        run.send_signal(signal.SIGTERM)
        outputs.append(log + finish(run))
        return tally(path, server, outputs=outputs, pairs=pairs)


def _read_until(proc: subprocess.Popen, marker: str) -> str:
    lines: list[str] = []
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:  # bounded; readline returns "" at exit
        line = proc.stdout.readline()
        lines.append(line)
        if marker in line or not line:
            return "".join(lines)
    raise AssertionError(f"no {marker!r} in time:\n{''.join(lines)}")


SCENARIOS = {
    "two `digest send` for one date started together": concurrent_sends,
    "the server stores, then replies after the client's timeout": late_reply,
    "the server stores, then drops the connection": drop_after_storing,
    "greylisting (451 first), a second `send` during the retry wait": greylisting,
    "SIGKILL of `digest send` mid-run, then reruns": killed_mid_run,
    "`digest run` start-up catch-up racing `digest send`": run_races_send,
}
