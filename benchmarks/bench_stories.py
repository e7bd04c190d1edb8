"""Near-duplicate grouping (rank.stories.stories, which folds the same story from several feeds into
one item) on 100,000 titles: a realistic pool (words drawn from a Zipf vocabulary of 20,000,
5 % planted near-duplicates: a title again with one word changed) and the worst case (titles
from a vocabulary of 12 words, so every title shares its rarest words with thousands).
Prints the median seconds of 5 runs and, for the realistic pool, how many planted duplicates
were joined to their original.

    python benchmarks/bench_stories.py            # 100,000 titles
    python benchmarks/bench_stories.py --smoke    # CI size
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from digest.rank.stories import stories


def realistic(n: int, rng: random.Random) -> tuple[list[frozenset[int]], list[tuple[int, int]]]:
    vocab = list(range(20000))  # the ranker passes term ids (ints), as here
    weights = [1 / (i + 1) for i in range(len(vocab))]
    titles, planted = [], []
    for i in range(n):
        if titles and rng.random() < 0.05:
            j = rng.randrange(len(titles))
            words = sorted(titles[j])
            if len(words) >= 8:
                words[rng.randrange(len(words))] = rng.choice(vocab)
                titles.append(frozenset(words))
                planted.append((j, i))
                continue
        titles.append(frozenset(rng.choices(vocab, weights, k=rng.randint(6, 14))))
    return titles, planted


def tiny(n: int, rng: random.Random) -> list[frozenset[int]]:
    vocab = list(range(12))
    return [frozenset(rng.sample(vocab, rng.randint(5, 9))) for _ in range(n)]


def timed(titles, runs: int) -> tuple[float, list[int]]:
    seconds, out = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = stories(titles)
        seconds.append(time.perf_counter() - t)
    return statistics.median(seconds), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--titles", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.titles, a.runs = 5000, 1
    rng = random.Random(7)
    titles, planted = realistic(a.titles, rng)
    s1, story = timed(titles, a.runs)
    joined = sum(story[j] == story[i] for j, i in planted)
    s2, story2 = timed(tiny(a.titles, rng), a.runs)
    print(f"near-duplicate grouping of {a.titles} titles; medians of {a.runs} runs")
    print(f"{'pool':<40} {'seconds':>8} {'stories':>8}")
    print(f"{'realistic (Zipf, 20,000 words)':<40} {s1:>8.2f} {len(set(story)):>8}")
    print(f"{'worst case (12-word vocabulary)':<40} {s2:>8.2f} {len(set(story2)):>8}")
    print(f"planted near-duplicates joined to their original: {joined} of {len(planted)}")


if __name__ == "__main__":
    main()
