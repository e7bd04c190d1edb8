"""Readers with large libraries: the memory and time of ranking them, beside ordinary readers.

    python benchmarks/bench_big_libraries.py           # 5,000 entries
    python benchmarks/bench_big_libraries.py --smoke   # CI size

A researcher's Zotero export holds thousands of papers, and a lab's readers may all bring
theirs. Cases: 64 readers with 10-paper libraries (one batch of ordinary readers, the
baseline), 64 with 500 papers, 64 with 2,000, and one reader with 20,000. Libraries are corpus
papers drawn with replacement (each title made unique), so their words are real. Each case is
ranked in a fresh process, with the libraries already parsed and cached (as on every ranking
after the first): every reader's digest (top 20), its seconds, and the process's peak RSS
before ranking (the store and the shared model) and after.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rank import NOW, bib, build
from common import in_fresh_process, load_corpus

from digest.config import load_config
from digest.rank import Ranker, Selection
from digest.store import Store

CASES = [(64, 10), (64, 500), (64, 2000), (1, 20000)]
SMOKE = [(4, 10), (4, 300), (1, 3000)]


def write_case(tmp: Path, papers: list[dict], readers: int, size: int) -> Path:
    """A config of `readers` readers, each with their own `size`-paper library."""
    rnd = random.Random(size)
    tables = []
    for r in range(readers):
        path = tmp / f"big{size}_{r}.bib"
        lib = [dict(rnd.choice(papers)) for _ in range(size)]
        for k, p in enumerate(lib):
            p["title"] = f"{p['title']} (copy {k})"
        path.write_text(bib(lib))
        tables.append(f'[users.r{r}]\nemail = "r{r}@example.org"\npapers = "{path.name}"\n')
    config = tmp / f"case{readers}x{size}.toml"
    config.write_text('[digest]\ndatabase = "d.db"\n[ranking]\nsemantic_mode = "off"\n'
                      'workers = 1\n[feeds.feed0]\npath = "x.xml"\n' + "".join(tables))
    return config


def rank_case(config_path: Path, warm: bool) -> tuple[float, float, float]:
    """(seconds, peak MiB before ranking, peak MiB after) in this process; `warm` only parses
    and caches the libraries."""
    config = load_config(config_path)
    with Store(config_path.parent / "d.db") as store:
        ranker = Ranker(config, store, store.entries_for_ranking(), NOW)
        if warm:
            for user in config.users.values():
                ranker.library(user.papers)
            return 0.0, 0.0, 0.0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        r = config.ranking
        for _ in ranker.rank_many([(u, None) for u in config.users.values()],
                                  selection=Selection(20, r.min_score, r.trending)):
            pass
        seconds = time.perf_counter() - t
        return seconds, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    papers = load_corpus()
    entries, cases = (300, SMOKE) if a.smoke else (5000, CASES)
    with tempfile.TemporaryDirectory() as tmp:
        store, _ = build(Path(tmp), papers, entries, 0)
        store.close()
        print(f"{entries} entries; one process; libraries cached")
        print("| readers × papers | seconds | ms per reader | peak RSS before ranking, MiB "
              "| peak RSS, MiB | ranking's own, MiB |\n|---|---|---|---|---|---|")
        for readers, size in cases:
            config = write_case(Path(tmp), papers, readers, size)
            in_fresh_process(rank_case, config, True)
            seconds, before, after = in_fresh_process(rank_case, config, False)
            print(f"| {readers} × {size:,} | {seconds:.2f} | {seconds / readers * 1000:.0f} "
                  f"| {before:.0f} | {after:.0f} | {after - before:.0f} |")


if __name__ == "__main__":
    main()
