"""Ingest benchmark: cold poll and all-304 re-poll of N loopback feeds, against peers.

    python benchmarks/bench_poll.py                 # full size: 200 feeds × 50 entries, 5 runs
    python benchmarks/bench_poll.py --smoke         # CI size: 10 feeds × 10 entries, 1 run

Contenders run in fresh subprocesses, interleaved run by run, against one loopback server:
- floor: feedparser.parse() of the same bytes with default settings, no HTTP, no storage;
- digest: `digest.poll` into a new SQLite file (fetch + parse + sanitize + dedupe + store),
  then a forced re-poll where every feed answers 304;
- reader: the `reader` library, update_feeds(workers=8), into a new SQLite file;
- rss2email: `r2e run --no-send` on the same feeds (OPML-imported).
Reports medians, entries/s, peak RSS of each subprocess and ratios to the floor.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    FeedServer,
    build_feeds,
    children_peak_rss_mib,
    ends_with_this_process,
    load_corpus,
    median,
    peak_rss_mib,
)

CONTENDERS = ["floor", "digest", "reader", "rss2email"]


def worker(name: str, port: int, n_feeds: int, per_feed: int, tmp: Path) -> dict:
    urls = [f"http://127.0.0.1:{port}/feed{i}.xml" for i in range(n_feeds)]
    if name == "floor":
        import feedparser

        bodies = list(build_feeds(load_corpus(), n_feeds, per_feed).values())
        t = time.perf_counter()
        n = sum(len(feedparser.parse(io.BytesIO(b)).entries) for b in bodies)
        return {"seconds": time.perf_counter() - t, "entries": n, "rss_mib": peak_rss_mib()}
    if name == "digest":
        from digest.config import load_config
        from digest.poll import poll
        from digest.store import Store

        cfg = tmp / "config.toml"
        cfg.write_text('[digest]\ndatabase = "d.db"\nallow_private_networks = true\n'
                       + "".join(f'[feeds.f{i}]\nurl = "{u}"\n' for i, u in enumerate(urls)))
        config = load_config(cfg)
        with Store(config.digest.database) as store:
            t = time.perf_counter()
            results = poll(config, store)
            cold = time.perf_counter() - t
            assert all(r.status == "ok" for r in results), [r.error for r in results if r.error][:3]
            t = time.perf_counter()
            again = poll(config, store, force=True)
            warm = time.perf_counter() - t
            assert all(r.status == "not-modified" for r in again)
            n = store.count_entries()
        # Parsing runs in worker processes: count the larger of the poller and a worker.
        return {"seconds": cold, "entries": n, "repoll_seconds": warm,
                "rss_mib": max(peak_rss_mib(), children_peak_rss_mib())}
    if name == "reader":
        from reader import make_reader

        r = make_reader(str(tmp / "reader.sqlite"))
        for u in urls:
            r.add_feed(u)
        t = time.perf_counter()
        r.update_feeds(workers=8)
        seconds = time.perf_counter() - t
        n = r.get_entry_counts().total
        r.close()
        return {"seconds": seconds, "entries": n, "rss_mib": peak_rss_mib()}
    if name == "rss2email":
        opml = tmp / "feeds.opml"
        opml.write_text('<?xml version="1.0"?><opml version="1.0"><body>' + "".join(
            f'<outline type="rss" text="f{i}" xmlUrl="{u}"/>' for i, u in enumerate(urls))
            + "</body></opml>")
        base = ["r2e", "-c", str(tmp / "r2e.cfg"), "-d", str(tmp / "r2e.json")]
        env = {**os.environ, "HOME": str(tmp)}
        subprocess.run([*base, "new", "bench@example.org"], check=True, capture_output=True, env=env)
        subprocess.run([*base, "opmlimport", str(opml)], check=True, capture_output=True, env=env)
        t = time.perf_counter()
        out = subprocess.run([*base, "run", "--no-send"], capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t
        if out.returncode != 0:
            raise SystemExit(f"r2e failed: {out.stderr[-500:]}")
        data = json.loads((tmp / "r2e.json").read_text())
        n = sum(len(f.get("seen", {})) for f in data.get("feeds", []))
        return {"seconds": seconds, "entries": n, "rss_mib": children_peak_rss_mib()}
    raise SystemExit(f"unknown contender {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--entries", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny size for CI")
    ap.add_argument("--only", nargs="*", default=CONTENDERS)
    ap.add_argument("--worker")
    ap.add_argument("--port", type=int)
    a = ap.parse_args()
    if a.smoke:
        a.feeds, a.entries, a.runs = 10, 10, 1
    if a.worker:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(worker(a.worker, a.port, a.feeds, a.entries, Path(tmp))))
        return

    feeds = build_feeds(load_corpus(), a.feeds, a.entries)
    results: dict[str, list[dict]] = {c: [] for c in a.only}
    with FeedServer(feeds) as server:
        for _ in range(a.runs):
            for name in a.only:  # interleaved, so machine noise hits everyone alike
                cmd = [sys.executable, __file__, "--worker", name, "--port", str(server.port),
                       "--feeds", str(a.feeds), "--entries", str(a.entries)]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                                     preexec_fn=ends_with_this_process())
                if out.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{out.stderr[-2000:]}")
                results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))

    total = a.feeds * a.entries
    print(f"{a.feeds} feeds × {a.entries} entries = {total} entries; median of {a.runs} runs")
    floor = median([r["seconds"] for r in results["floor"]]) if "floor" in results else None
    print(f"{'contender':<12} {'seconds':>8} {'entries/s':>10} {'µs/entry':>9} {'× floor':>8} "
          f"{'peak RSS MiB':>13} {'entries':>8}")
    for name, runs in results.items():
        s = median([r["seconds"] for r in runs])
        ratio = f"{s / floor:.2f}" if floor else "-"
        print(f"{name:<12} {s:>8.2f} {total / s:>10.0f} {s / total * 1e6:>9.0f} {ratio:>8} "
              f"{median([r['rss_mib'] for r in runs]):>13.0f} {runs[0]['entries']:>8}")
    if "digest" in results:
        repoll = median([r["repoll_seconds"] for r in results["digest"]])
        print(f"digest all-304 re-poll of {a.feeds} feeds: {repoll:.3f} s")
        ours = median([r["seconds"] for r in results["digest"]])
        for name in ("reader", "rss2email"):
            if name in results:
                peer = median([r["seconds"] for r in results[name]])
                print(f"digest vs {name}: {peer / ours:.2f}× faster")
        bad = [r for r in results["digest"] if r["entries"] != total]
        if bad:
            raise SystemExit(f"digest stored {bad[0]['entries']} entries, expected {total}")


if __name__ == "__main__":
    main()
