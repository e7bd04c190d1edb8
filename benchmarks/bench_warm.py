"""The send's wait with the semantic extra: embedding ahead (after the poll) against at the send.

    python benchmarks/bench_warm.py           # 500 new entries, 100 readers, one new library
    python benchmarks/bench_warm.py --smoke   # CI size

A day's poll has stored 500 new entries; 100 readers have 10-paper libraries, two have a
one-paper library (so the entries' sentences are embedded too), and one has just brought a
library of 2,000 papers. Two copies of that database, each used in a fresh process: in one the
send's composing (every reader ranked and selected, as `digest send` does before rendering)
finds nothing embedded and embeds it all; in the other `warm` (what `digest poll` runs after
storing new entries) has embedded it first, then the send composes. A third copy has the two
overlap (a cron send that starts while `warm` still works): `warm` in one process, the send in
another once `warm` has saved its first chunk; each counts the texts its model embedded.
Needs the semantic extra.
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
from bench_rank import NOW, bib, build
from common import fresh_processes, in_fresh_process, load_corpus

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
    """(seconds of the warm step, texts its model embedded, seconds of the send's composing)."""
    count = counted()
    config = load_config(config_path)
    with Store(config.digest.database) as store:
        t = time.perf_counter()
        if ahead:
            warm(config, store, NOW)
        warmed, texts = time.perf_counter() - t, count[0]
        t = time.perf_counter()
        digests = list(compose(config, store, list(config.users.values()), None, NOW))
        assert len(digests) == len(config.users)
        return warmed, texts, time.perf_counter() - t


def counted() -> list[int]:
    """How many texts this process's model embeds, counted from here on, each sentence of an
    entry's one (every version of the Embedder embeds through _load().encode). warm() counts
    an entry's sentences as one text: the same unit in every case here is the model's."""
    count = [0]
    load = semantic.Embedder._load

    def counting(self):
        model = load(self)
        if not getattr(model, "counted", False):
            encode = model.encode

            def encode_counted(texts, **kw):
                count[0] += len(texts)
                return encode(texts, **kw)
            model.encode, model.counted = encode_counted, True
        return model
    semantic.Embedder._load = counting
    return count


def overlap_warm(config_path: Path) -> tuple[float, int]:
    """`warm` alone in its process: (seconds, texts its model embedded)."""
    count = counted()
    config = load_config(config_path)
    with Store(config.digest.database) as store:
        t = time.perf_counter()
        warm(config, store, NOW)
        return time.perf_counter() - t, count[0]


def overlap_send(config_path: Path) -> tuple[float, int]:
    """The send's composing, started once `warm` (another process) has saved a chunk."""
    count = counted()
    config = load_config(config_path)
    with Store(config.digest.database) as store:
        deadline = time.monotonic() + 3600
        while (not store.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
               and time.monotonic() < deadline):
            time.sleep(0.05)
        t = time.perf_counter()
        digests = list(compose(config, store, list(config.users.values()), None, NOW))
        assert len(digests) == len(config.users)
        return time.perf_counter() - t, count[0]


def overlap(config_path: Path) -> tuple[tuple[float, int], tuple[float, int]]:
    with fresh_processes(2) as pool:
        ahead = pool.submit(overlap_warm, config_path)
        send = pool.submit(overlap_send, config_path)
        return ahead.result(), send.result()


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
        for case in (False, True, "overlap"):
            copy = root / {False: "at-send", True: "ahead", "overlap": "overlap"}[case]
            copy.mkdir()
            for f in root.iterdir():
                if f.is_file():
                    shutil.copy(f, copy / f.name)
            runs[case] = (overlap(copy / config.name) if case == "overlap"
                          else in_fresh_process(day, copy / config.name, case))
        print(f"{entries} new entries; {readers} readers with 10-paper libraries, 2 with one "
              f"paper, 1 with a new {big:,}-paper library; each case in a fresh process")
        print("| embedded | after the poll, s | the send's composing, s |\n|---|---|---|")
        print(f"| at the send | – | {runs[False][2]:.1f} |")
        print(f"| after the poll ({runs[True][1]:,} texts) | {runs[True][0]:.1f} "
              f"| {runs[True][2]:.1f} |")
        (warmed, by_warm), (sent, by_send) = runs["overlap"]
        print(f"\noverlapping: the send started once `warm` had saved its first chunk; `warm` "
              f"{warmed:.1f} s, the send's composing {sent:.1f} s; texts embedded: {by_warm:,} "
              f"by `warm` + {by_send:,} by the send = {by_warm + by_send:,} "
              f"({by_warm + by_send - runs[True][1]:+,} against the {runs[True][1]:,} needed)")


if __name__ == "__main__":
    main()
