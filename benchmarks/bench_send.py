"""Delivery speed: N digests to an SMTP server on 127.0.0.1 (aiosmtpd, in its own process, as
a real server would be), one reused connection versus a fresh connection per message, and the
reused connection through the exactly-once ledger as `digest send` drives it (one claim
transaction for the batch, the lease heartbeat, a 'sending' and a 'sent' commit per message),
interleaved in the same run.

    python benchmarks/bench_send.py            # 1,000 messages
    python benchmarks/bench_send.py --smoke    # CI size

The messages are real digests (20 items, HTML + text, about 50 kB) built as delivery builds
them, and serialized once (as delivery does: a retry resends the same bytes); building is
not timed, it is the same for both. The server accepts and discards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import views
from common import ends_with_this_process, peak_rss_mib

from digest.config import load_config
from digest.deliver import Outgoing, Smtp
from digest.ledger import SENDING, SENT
from digest.message import build_message
from digest.models import iso_utc
from digest.owners import new_owner
from digest.render import Renderer
from digest.send import Heartbeat
from digest.store import Store


def start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                               "-c", "aiosmtpd.handlers.Sink"],
                              preexec_fn=ends_with_this_process())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # bounded wait for it to listen
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("aiosmtpd did not start")


def messages(n: int, config) -> list:
    user = next(iter(config.users.values()))
    renderer = Renderer()
    now = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    out = []
    for v in views(n):
        reader = dataclasses.replace(user, name=v.reader, email=f"{v.reader}@example.org")
        msg = build_message(config, reader, v, renderer.html(v), renderer.text(v), now)
        out.append(Outgoing.of(msg, v.reader, "2026-11-22"))
    return out


def reused(config, msgs) -> tuple[float, int]:
    backend = Smtp(config.smtp)
    t = time.perf_counter()
    for out in msgs:
        backend.send(out)
    backend.close()
    return time.perf_counter() - t, backend.connections


def ledgered(config, msgs, folder: Path) -> tuple[float, int, float]:
    """As `digest send` does it: the ledger writes around each hand-over, on a real file.
    Returns the seconds, the connections and the seconds spent in ledger writes."""
    db = folder / f"ledger-{time.monotonic_ns()}.db"
    content = json.dumps({"items": [["0123456789abcdef", 0.5, ["matches: style transfer"]]] * 20})
    in_ledger = 0.0
    with Store(db) as store:
        owner = new_owner()
        backend = Smtp(config.smtp)
        t = time.perf_counter()
        store.claim_deliveries([(m.reader, m.day) for m in msgs], owner, datetime.now(UTC))
        in_ledger += time.perf_counter() - t
        with Heartbeat(db, owner) as heartbeat:
            heartbeat.beat()
            for out in msgs:
                t1 = time.perf_counter()
                now = datetime.now(UTC)
                store.advance(out.reader, out.day, owner, SENDING, now, attempts=1, items=20,
                              message_id=out.reader, window_end=iso_utc(now), content=content)
                t2 = time.perf_counter()
                backend.send(out)
                t3 = time.perf_counter()
                store.advance(out.reader, out.day, owner, SENT, datetime.now(UTC), detail="")
                in_ledger += (t2 - t1) + (time.perf_counter() - t3)
        backend.close()
        seconds = time.perf_counter() - t
    for f in folder.glob(db.name + "*"):
        f.unlink()
    return seconds, backend.connections, in_ledger


def fresh(config, msgs) -> tuple[float, int]:
    t = time.perf_counter()
    for out in msgs:
        backend = Smtp(config.smtp)
        backend.send(out)
        backend.close()
    return time.perf_counter() - t, len(msgs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.messages, a.runs = 20, 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.toml").write_text(
                f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                'from = "Bench <digest@example.org>"\n'
                '[feeds.f]\npath = "f.xml"\n[users.r]\nemail = "r@example.org"\n')
            config = load_config(Path(tmp) / "config.toml")
            msgs = messages(a.messages, config)
            paths = {"reused connection": reused, "fresh connection": fresh,
                     "reused + ledger": lambda c, m: ledgered(c, m, Path(tmp))}
            results: dict[str, list[float]] = {k: [] for k in paths}
            ledger_share: list[float] = []
            conns = {}
            for _ in range(a.runs):  # interleaved, against machine noise
                for name, fn in paths.items():
                    seconds, conns[name], *ledger = fn(config, msgs)
                    results[name].append(seconds)
                    if ledger:
                        ledger_share.append(ledger[0] / seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{a.messages} digests to aiosmtpd on 127.0.0.1; medians of {a.runs} runs")
    print(f"{'path':<20} {'seconds':>8} {'msg/s':>8} {'connections':>12}")
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, s in med.items():
        print(f"{k:<20} {s:>8.2f} {a.messages / s:>8.0f} {conns[k]:>12}")
    print(f"reused is {med['fresh connection'] / med['reused connection']:.2f}× the fresh-connection rate")
    print(f"with the ledger (as `digest send` runs): "
          f"{med['fresh connection'] / med['reused + ledger']:.2f}× the fresh-connection rate; "
          f"ledger writes are {statistics.median(ledger_share):.0%} of its time")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
