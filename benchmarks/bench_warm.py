"""The send's wait with the semantic extra: embedding ahead (after the poll) against at the send.

    python benchmarks/bench_warm.py           # 500 new entries, 100 readers, one new library
    python benchmarks/bench_warm.py --smoke   # CI size

A day's poll has stored 500 new entries; 100 readers have 10-paper libraries, two have a
one-paper library (so the entries' sentences are embedded too), and one has just brought a
library of 2,000 papers. Two copies of that database, each used in a fresh process: in one the
send's composing (every reader ranked and selected, as `digest send` does before rendering)
finds nothing embedded and embeds it all; in the other `warm` (what `digest poll` runs after
storing new entries) has embedded it first, then the send composes. Needs the semantic extra.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_big_libraries import fresh
from bench_rank import NOW, bib, build
from common import load_corpus

from digest import semantic
from digest.compose import compose
from digest.config import load_config
from digest.store import Store
from digest.warm import warm


def write_config(tmp: Path, papers: list[dict], readers: int, big: int) -> Path:
    """bench_rank's readers (10-paper libraries) plus two one-paper readers and one with `big`
    papers, the semantic extra on."""
    rnd = random.Random(big)
    lib = [dict(rnd.choice(papers)) for _ in range(big)]
    for k, p in enumerate(lib):
        p["title"] = f"{p['title']} (copy {k})"  # every paper its own text, as in a real library
    (tmp / "big.bib").write_text(bib(lib))
    for r in range(2):
        (tmp / f"one{r}.bib").write_text(bib([papers[-1 - r]]))
    tables = [f'[users.r{r}]\nemail = "r{r}@example.org"\npapers = "lib{r}.bib"\n'
              for r in range(readers)]
    tables += [f'[users.one{r}]\nemail = "one{r}@example.org"\npapers = "one{r}.bib"\n'
               for r in range(2)]
    tables.append('[users.big]\nemail = "big@example.org"\npapers = "big.bib"\n')
    path = tmp / "config.toml"
    path.write_text('[digest]\ndatabase = "d.db"\n[ranking]\nsemantic_mode = "on"\n'
                    'lookback = "1d"\n[feeds.feed0]\npath = "x.xml"\n' + "".join(tables))
    return path


def day(config_path: Path, ahead: bool) -> tuple[float, int, float]:
    """(seconds of the warm step, texts it embedded, seconds of the send's composing)."""
    config = load_config(config_path)
    with Store(config.digest.database) as store:
        t = time.perf_counter()
        texts = warm(config, store, NOW) if ahead else 0
        warmed = time.perf_counter() - t
        t = time.perf_counter()
        digests = list(compose(config, store, list(config.users.values()), None, NOW))
        assert len(digests) == len(config.users)
        return warmed, texts, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if not semantic.available():
        print("skipped: the semantic extra is not installed")
        return
    papers = load_corpus()
    entries, readers, big = (20, 2, 20) if a.smoke else (500, 100, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store, _ = build(root, papers, entries, readers)
        store.close()
        config = write_config(root, papers, readers, big)
        runs = {}
        for ahead in (False, True):
            copy = root / ("ahead" if ahead else "at-send")
            copy.mkdir()
            for f in root.iterdir():
                if f.is_file():
                    shutil.copy(f, copy / f.name)
            runs[ahead] = fresh(day, copy / config.name, ahead)
        print(f"{entries} new entries; {readers} readers with 10-paper libraries, 2 with one "
              f"paper, 1 with a new {big:,}-paper library; each case in a fresh process")
        print("| embedded | after the poll, s | the send's composing, s |\n|---|---|---|")
        print(f"| at the send | – | {runs[False][2]:.1f} |")
        print(f"| after the poll ({runs[True][1]:,} texts) | {runs[True][0]:.1f} "
              f"| {runs[True][2]:.1f} |")


if __name__ == "__main__":
    main()
