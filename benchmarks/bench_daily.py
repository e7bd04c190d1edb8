"""One daily cycle, end to end: 100 local feeds with 5,000 new entries, 1,000 readers; poll,
rank, render and deliver to the outbox, through the same code as `digest poll` + `digest send`.

    python benchmarks/bench_daily.py           # full size
    python benchmarks/bench_daily.py --smoke   # CI size

Feeds alternate arXiv-style RSS and Atom (entries from ../shared/corpus/papers.jsonl); readers
have 5 interest phrases, 2 followed authors and their own 10-paper BibTeX library each. The
split per stage is measured inside the one run by timing the stage functions as they are
called (ranking includes building the model and tokenizing the new entries once).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rank import write_readers
from common import build_feeds, children_peak_rss_mib, load_corpus, peak_rss_mib

from digest import daily, deliver, message, rank, render, send
from digest.config import load_config
from digest.deliver import backend_for
from digest.poll import poll
from digest.send import send_digests
from digest.store import Store

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SPENT: dict[str, float] = defaultdict(float)


def timed(stage: str, fn):
    def wrapper(*args, **kw):
        t = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            SPENT[stage] += time.perf_counter() - t
    return wrapper


def timed_iter(stage: str, fn):
    """For generators (rank_many): the time inside each step counts, not the consumer's."""
    def wrapper(*args, **kw):
        it = fn(*args, **kw)
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                SPENT[stage] += time.perf_counter() - t
                return
            SPENT[stage] += time.perf_counter() - t
            yield item
    return wrapper


def instrument() -> None:
    rank.Ranker.__init__ = timed("rank", rank.Ranker.__init__)
    rank.Ranker.rank_many = timed_iter("rank", rank.Ranker.rank_many)
    render.Renderer.html = timed("render", render.Renderer.html)
    render.Renderer.text = timed("render", render.Renderer.text)
    daily.digest_view = timed("render", render.digest_view)  # the name the pipeline calls
    send.build_message = timed("deliver", message.build_message)
    send.Outgoing.of = classmethod(timed("deliver", deliver.Outgoing.of.__func__))
    deliver.Outbox.send = timed("deliver", deliver.Outbox.send)
    for name in ("claim_deliveries", "advance", "release", "delivery", "deliveries_in",
                 "owners", "last_delivered"):
        setattr(Store, name, timed("ledger", getattr(Store, name)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=100)
    ap.add_argument("--per-feed", type=int, default=50)
    ap.add_argument("--readers", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.feeds, a.per_feed, a.readers = 4, 10, 20
    papers = load_corpus()
    instrument()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "feeds").mkdir()
        for path, body in build_feeds(papers, a.feeds, a.per_feed).items():
            (root / "feeds" / path.lstrip("/")).write_bytes(body)
        users = write_readers(root, papers, a.readers, random.Random(7))
        feeds = "".join(f'[feeds.f{f}]\npath = "feeds/feed{f}.xml"\n' for f in range(a.feeds))
        (root / "config.toml").write_text(
            '[digest]\ndatabase = "digest.db"\noutbox = "outbox"\n'
            '[ranking]\nsemantic_mode = "off"\nlookback = "2d"\n' + feeds + users)
        config = load_config(root / "config.toml")
        t0 = time.perf_counter()
        with Store(config.digest.database) as store:
            results = poll(config, store, now=NOW)
            t1 = time.perf_counter()
            sent = send_digests(config, store, list(config.users.values()), None, NOW,
                                backend_for(config))
        t2 = time.perf_counter()
        entries = sum(r.new for r in results)
        emails = len(list((root / "outbox").rglob("*.eml")))
    states = defaultdict(int)
    for r in sent:
        states[str(r.state)] += 1
    total = t2 - t0
    other = (t2 - t1) - sum(SPENT[k] for k in ("rank", "render", "deliver", "ledger"))
    print(f"daily cycle: {a.feeds} local feeds, {entries} new entries, {a.readers} readers → "
          f"{emails} emails in the outbox ({dict(states)})")
    print(f"{'stage':<34} {'seconds':>8} {'share':>6}")
    for stage, seconds in (("poll (fetch, parse, store)", t1 - t0),
                           ("rank (model + every reader)", SPENT["rank"]),
                           ("render (HTML + text)", SPENT["render"]),
                           ("deliver (message, outbox)", SPENT["deliver"]),
                           ("ledger (read, claim, sending, sent)", SPENT["ledger"]),
                           ("other (windows, feed health)", other)):
        print(f"{stage:<34} {seconds:>8.2f} {seconds / total:>6.0%}")
    print(f"{'total':<34} {total:>8.2f}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB (main process), {children_peak_rss_mib():.0f} MiB "
          "(largest worker)")


if __name__ == "__main__":
    main()
