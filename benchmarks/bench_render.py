"""Rendering speed: N digests of 20 items, HTML + text, MJML compiled once vs per reader.

    python benchmarks/bench_render.py            # 1,000 digests
    python benchmarks/bench_render.py --smoke    # CI size

Items are built from ../shared/corpus/papers.jsonl when it is there (titles, abstracts), else
from generated text, so this benchmark also runs without ../shared. Every digest differs (its
own reader, items, scores and links). Both paths render the same views in the same run,
interleaved; the outputs are checked to be identical first.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPUS, peak_rss_mib

from digest.links import Links
from digest.render import DigestView, ItemView, Renderer, SectionView, cut, markup, shorten_authors


def texts() -> list[tuple[str, str]]:
    if CORPUS.exists():
        import json

        return [(p["title"], p["abstract"]) for p in map(json.loads, CORPUS.open())]
    rnd = random.Random(1)
    words = ["graph", "sparse", "attention", "model", "learning", "robust", "data", "scaling",
             "training", "river"]
    return [(" ".join(rnd.choices(words, k=9)).capitalize(), " ".join(rnd.choices(words, k=180)))
            for _ in range(200)]


def views(n: int) -> list[DigestView]:
    rnd = random.Random(5)
    pool = texts()
    links = Links("https://digest.example.org", b"bench-secret")
    out = []
    for r in range(n):
        reader = f"reader{r}"
        items = []
        for k in range(20):
            title, abstract = pool[(r * 20 + k) % len(pool)]
            entry_id = f"{r:04d}{k:02d}abcdef0123"
            items.append(ItemView(
                number=k + 1, title=cut(title, 300), link=f"https://arxiv.org/abs/2611.{r:05d}",
                authors=shorten_authors([f"Author {i}" for i in range(rnd.randint(1, 9))]),
                tags=["arXiv"] + (["HF daily"] if k % 4 == 0 else []) + ["cs.LG", "cs.CL"][: 1 + k % 2]
                + ["2026-11-21"],
                snippet=cut(abstract, 280),
                why="; ".join(['matches "sparse attention" in the title',
                               'similar to your paper "Attention is all you need"'][: 1 + k % 2]),
                up=links.feedback(reader, entry_id, "up"),
                down=links.feedback(reader, entry_id, "down")))
        out.append(DigestView(
            title="Daily digest", reader=reader, date="2026-11-22", day="Sunday, 22 November 2026",
            subject=f"Daily digest 2026-11-22: {items[0].title}", preheader="20 items for you.",
            sections=[SectionView("For you", items), SectionView("Trending", items[:1])],
            health="7 feeds, 412 new entries",
            view_url=links.view(reader, "2026-11-22"), unsubscribe_url=links.unsubscribe(reader),
            feed_url=links.feed(reader),
            why="You get this because you are a reader on this server.",
            base_url=links.base))
    return out


def timed(html, text, vs: list[DigestView]) -> float:
    """Seconds to render every view's HTML (with `html`) and text."""
    t = time.perf_counter()
    for v in vs:
        html(v)
        text(v)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--digests", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.digests, a.runs = 20, 1
    vs = views(a.digests)
    renderer = Renderer()
    assert all(markup(renderer.html(v)) == markup(renderer.html_compiled_per_reader(v)) for v in vs[:20])
    results: dict[str, list[float]] = {"compiled once": [], "compiled per reader": []}
    for _ in range(a.runs):  # interleaved, against machine noise
        results["compiled once"].append(timed(renderer.html, renderer.text, vs))
        results["compiled per reader"].append(
            timed(renderer.html_compiled_per_reader, renderer.text, vs))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{a.digests} digests × 20 items, HTML + text; medians of {a.runs} runs")
    print(f"{'path':<22} {'seconds':>8} {'ms/digest':>10}")
    for k, s in med.items():
        print(f"{k:<22} {s:>8.3f} {s / a.digests * 1000:>10.3f}")
    print(f"compiled once is {med['compiled per reader'] / med['compiled once']:.2f}× faster")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
