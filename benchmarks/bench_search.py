"""Archive search at size: 100,000 stored entries (the corpus's titles and abstracts, varied),
then `digest search`'s library call for a phrase, plain words, an author and one reader's
feeds; medians of 20 queries each, after the one-time indexing (timed on its own).

    python benchmarks/bench_search.py            # 100,000 entries
    python benchmarks/bench_search.py --smoke    # CI size

Without ../shared the texts are generated.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import texts

from digest.config import parse_config
from digest.normalize import make_entry
from digest.search import search
from digest.store import Store

TARGET_MS = 50.0
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
QUERIES = {"phrase": ['"style transfer"', '"neural network"', '"language model"'],
           "words": ["attention sparse", "graph learning", "speech recognition model"],
           "author": [],
           "one reader's feeds": ['"style transfer"', "attention"]}


def fill(store: Store, n: int) -> None:
    rnd = random.Random(3)
    pool = texts()
    names = [f"{first} {last}" for first in ("Ada", "Grace", "Alan", "Mira", "Yusuf", "Lena")
             for last in ("Lovelace", "Hopper", "Turing", "Okafor", "Demir", "Tanabe", "Raman")]
    for feed in range(10):
        batch = []
        for k in range(feed, n, 10):
            title, abstract = pool[k % len(pool)]
            words = abstract.split()
            rnd.shuffle(words)
            batch.append(make_entry(
                guid=f"urn:bench:{k}", link=f"https://papers.example.org/{k}",
                title=f"{title} ({k})", summary=" ".join(words[:150]), summary_is_html=False,
                authors=rnd.sample(names, 3), categories=["cs.LG"],
                published=NOW - timedelta(minutes=k), fetched=NOW))
        store.add_entries(f"feed{feed}", batch, NOW)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    n = 5_000 if args.smoke else args.entries
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({"digest": {"database": "d.db"},
                               "feeds": {f"feed{i}": {"path": "f.xml"} for i in range(10)},
                               "users": {"ada": {"email": "ada@example.org",
                                                 "feeds": ["feed1", "feed2"]}}},
                              Path(tmp) / "config.toml")
        with Store(Path(tmp) / "d.db") as store:
            t0 = time.perf_counter()
            fill(store, n)
            filled = time.perf_counter() - t0
            t0 = time.perf_counter()
            indexed = store.index_search()
            index_s = time.perf_counter() - t0
            QUERIES["author"] = ["Grace Hopper", "Lena Tanabe"]
            rows = []
            for kind, queries in QUERIES.items():
                times, found = [], 0
                for i in range(20):
                    q = queries[i % len(queries)]
                    t0 = time.perf_counter()
                    if kind == "author":
                        hits = search(config, store, "", author=q)
                    else:
                        hits = search(config, store, q, reader=config.users["ada"]
                                      if kind == "one reader's feeds" else None)
                    times.append((time.perf_counter() - t0) * 1000)
                    found += len(hits)
                rows.append((kind, statistics.median(times), max(times), found / 20))
    print(f"{n:,} entries stored in {filled:.1f} s; first search indexes them: {indexed:,} rows "
          f"in {index_s:.2f} s (once; later polls index only what is new)")
    print(f"{'query':<22}{'median ms':>10}{'max ms':>9}{'hits':>6}")
    for kind, med, worst, hits in rows:
        print(f"{kind:<22}{med:>10.1f}{worst:>9.1f}{hits:>6.0f}")
    slowest = max(med for _, med, _, _ in rows)
    print(f"slowest median {slowest:.1f} ms (target ≤ {TARGET_MS:.0f} ms at 100,000 entries)"
          + ("" if args.smoke else f": {'met' if slowest <= TARGET_MS else 'NOT met'}"))


if __name__ == "__main__":
    main()
