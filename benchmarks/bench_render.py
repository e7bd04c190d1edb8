"""Rendering speed: N digests of 20 items, HTML + text, MJML compiled once vs per reader;
and the cost of choosing each item's highlighted sentence.

    python benchmarks/bench_render.py            # 1,000 digests
    python benchmarks/bench_render.py --smoke    # CI size

Items are built from ../shared/corpus/papers.jsonl when it is there (titles, abstracts), else
from generated text, so this benchmark also runs without ../shared. Every digest differs (its
own reader, items, scores and links) and shows what a digest shows: each abstract's sentence
that matched the reader with its words in bold, a Hugging Face summary on every fourth item, a
code link on every third. Both paths render the same views in the same run, interleaved; the
outputs are checked to be identical first. The highlight is timed as the ranker runs it: every
reader with their own phrases and library, over the items of their digest.
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

from digest import sentences
from digest.highlight import Highlighter, Profile, highlight
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


PHRASES = ["sparse attention", "language models", "reinforcement learning", "diffusion",
           "style transfer", "graph neural networks", "retrieval", "benchmark", "robustness"]


def profiles(n: int, pool) -> list[Profile]:
    """A reader each: three phrases and a library of ten titles of their own."""
    rnd = random.Random(3)
    return [Profile.of(rnd.sample(PHRASES, 3), [t for t, _ in rnd.sample(pool, 10)])
            for _ in range(n)]


def digest_items(r: int, pool) -> list[tuple[str, str]]:
    return [pool[(r * 7 + k * 13) % len(pool)] for k in range(20)]


def views(n: int) -> list[DigestView]:
    rnd = random.Random(5)
    pool = texts()
    readers = profiles(n, pool)
    links = Links("https://digest.example.org", b"bench-secret")
    out = []
    for r in range(n):
        reader = f"reader{r}"
        items = []
        for k, (title, abstract) in enumerate(digest_items(r, pool)):
            entry_id = f"{r:04d}{k:02d}abcdef0123"
            h = highlight(abstract, readers[r])
            items.append(ItemView(
                number=k + 1, title=cut(title, 300), link=f"https://arxiv.org/abs/2611.{r:05d}",
                authors=shorten_authors([f"Author {i}" for i in range(rnd.randint(1, 9))]),
                meta=" · ".join(["arXiv"] + (["HF daily"] if k % 4 == 0 else [])
                                + ["cs.LG", "cs.CL"][: 1 + k % 2] + ["2026-11-21"]),
                snippet=h.text, marked=tuple(h.parts()),
                tldr=cut(abstract[::-1], 200) if k % 4 == 0 else "",
                links=(("code", f"https://github.com/lab{r}/repo{k}"),) if k % 3 == 0 else (),
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
            feed_url=links.feed(reader), reader_url=links.reader(reader),
            why="You get this because you are a reader on this server.",
            base_url=links.base))
    return out


def highlight_cost(n: int, runs: int) -> tuple[float, float]:
    """Median ms per item of choosing the sentence, one reader's digest at a time as the
    ranker does: (every abstract split and stemmed when first met, as when the database has
    not stored its sentences yet; every abstract's sentences already read)."""
    pool = texts()
    readers = profiles(n, pool)
    jobs = [(p, [a for _, a in digest_items(r, pool)]) for r, p in enumerate(readers)]
    cold, shared = [], []
    for _ in range(runs):
        vocabulary: dict[str, int] = {}

        def ids(stems, add, vocabulary=vocabulary):
            return {s: vocabulary.setdefault(s, len(vocabulary)) for s in stems}

        highlighter, read = Highlighter(ids), {}

        def doc(abstract, highlighter=highlighter, read=read):
            if abstract not in read:
                read[abstract] = sentences.one(abstract, highlighter.ids)
            return read[abstract]

        for spent in (cold, shared):
            t = time.perf_counter()
            for p, abstracts in jobs:
                highlighter.many(highlighter.marks(p, []), [(doc(a), None) for a in abstracts])
            spent.append((time.perf_counter() - t) / sum(len(a) for _, a in jobs) * 1000)
    return statistics.median(cold), statistics.median(shared)


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
    cold, warm = highlight_cost(a.digests, a.runs)
    print(f"highlight: {cold:.3f} ms per item, every abstract new; {warm:.3f} ms per item when "
          "readers share it")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
