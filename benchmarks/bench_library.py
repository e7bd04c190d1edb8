"""Seed libraries at real size: a generated 20,000-entry BibTeX and CSL-JSON export, parsed by
digest's reader and (when installed, `pip install -e '.[bench]'`) by bibtexparser 2, plain and
with its LaTeX decoding; then the first and the cached `library_seeds` a ranking reads.

    python benchmarks/bench_library.py            # 20,000 entries
    python benchmarks/bench_library.py --smoke    # CI size

The exports come from benchmarks/libraries.py (seeded; Zotero/JabRef oddities, accents, nested
braces, a broken entry in every 997). Medians of three runs. Needs nothing from ../shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from libraries import bibtex, csl_json

from digest.library import load_library
from digest.rank.seeds import library_seeds
from digest.store import Store

TARGET_S = 2.0  # a 20,000-entry export parses within this (issue: libraries at real size)


def median_time(fn, runs: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    n = 1_000 if args.smoke else args.entries
    with tempfile.TemporaryDirectory() as tmp:
        bib, js = Path(tmp, "library.bib"), Path(tmp, "library.json")
        bib.write_text(bibtex(n))
        js.write_text(csl_json(n))
        rows = []
        for label, path in (("BibTeX", bib), ("CSL-JSON", js)):
            t, lib = median_time(lambda p=path: load_library(p))
            rows.append((f"digest, {label}", t, len(lib.papers), len(lib.warnings)))
        try:
            import bibtexparser
            from bibtexparser.middlewares import LatexDecodingMiddleware
        except ImportError:
            bibtexparser = None
        if bibtexparser:
            text = bib.read_text()
            t, lib = median_time(lambda: bibtexparser.parse_string(text))
            rows.append(("bibtexparser 2, BibTeX, no LaTeX decoding", t, len(lib.entries),
                         len(lib.failed_blocks)))
            part = text[: len(text) // 20]  # LaTeX decoding is slow: a twentieth, scaled up
            t, lib = median_time(lambda: bibtexparser.parse_string(
                part, append_middleware=[LatexDecodingMiddleware()]), runs=1)
            rows.append(("bibtexparser 2, BibTeX, LaTeX decoded (a twentieth, time ×20)", t * 20,
                         "–", "–"))
        with Store(Path(tmp, "digest.db")) as store:
            t0 = time.perf_counter()
            library_seeds(store, bib)
            first = time.perf_counter() - t0
            cached, seeds = median_time(lambda: library_seeds(store, bib))
        rows.append(("first ranking: parse + tokenize + cache", first, len(seeds.titles), ""))
        rows.append(("later rankings and `digest check`: cache", cached, len(seeds.titles), ""))
        size = bib.stat().st_size
    print(f"{n:,}-entry library ({size / 1e6:.1f} MB of BibTeX)")
    print("| parser | seconds | papers | skipped |\n|---|---|---|---|")
    for label, t, papers, bad in rows:
        print(f"| {label} | {t:.2f} | {papers:,} | {bad} |" if isinstance(papers, int)
              else f"| {label} | {t:.2f} | {papers} | {bad} |")
    ours = rows[0][1] * (20_000 / n)
    print(f"digest BibTeX, scaled to 20,000 entries: {ours:.2f} s (target ≤ {TARGET_S} s) "
          f"{'met' if ours <= TARGET_S else 'NOT met'}")


if __name__ == "__main__":
    main()
