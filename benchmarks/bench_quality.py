"""Ranking quality on the three dev sets of ../shared/eval, beside their baselines, in-fold and
out-of-fold.

    python benchmarks/bench_quality.py              # full size, lexical (the default install)
    python benchmarks/bench_quality.py --semantic   # plus the semantic extra
    python benchmarks/bench_quality.py --smoke      # CI size: a few readers of each set
    python benchmarks/bench_quality.py --model DIR  # the semantic rows with another model

Every fitted constant (tuning.GRID) is chosen by 2-fold cross-validation over readers: the
readers of each set are split in two halves; the constants are chosen on one half of every set
at once (the mean gain over the TF-IDF baseline of each set) and scored on the other half, both
ways; "out-of-fold" is every reader scored with constants chosen without them, on a fixed
halving (every other reader, in sorted order). Beside it, the mean and standard deviation of
that figure over 200 random halvings: a set of 29 readers split once is one draw, and the
spread says how much of a difference between two figures the draw alone can make. "Shipped" is
tuning.DEFAULT, which is chosen the same way on all readers (so it is in-fold), except where
tuning.py says why a constant is held (the concept space's size, the query likelihood's μ).
The rows "... held at" repeat the random halvings with one fitted constant held at its shipped
value: where that beats fitting it, the fitting costs more in noise than it finds. Ablations report
out-of-fold figures with one part switched off: a part that does not earn its keep there on at
least two of the three sets is removed, as is a constant whose fitting does not beat leaving it
out there (tuning.RULED_OUT: the rows "... softness fitted too" fit it all the same), and a
value that breaks what the ranker's tests promise is not chosen from (tuning.UNSAFE: the row
"... unsafe values allowed too" allows it). A speed choice is shown beside what it replaces:
seed papers on 40 terms. The concept space's randomized SVD is a draw of its own: the rows
"... random starts" give the shipped figures over five of them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import EVAL, SETS, Project, start, use_model

from digest.rank import sentence_match
from digest.rank.tuning import DEFAULT, GRID, RULED_OUT, UNSAFE

LEXICAL = ("concepts", "concept_temperature", "term_budget", "dirichlet", "concept_sentences")


def grid(names: tuple[str, ...], smoke: bool):
    values = [(GRID | RULED_OUT)[n] + UNSAFE.get(n, ()) for n in names]
    values = [v if not smoke else (getattr(DEFAULT, n), v[0]) for n, v in zip(names, values, strict=True)]
    seen = set()
    for combo in itertools.product(*values):
        t = DEFAULT.with_(**dict(zip(names, combo, strict=True)))
        if t.concepts == 0:  # no concept space: its softness is moot
            t = t.with_(concept_temperature=DEFAULT.concept_temperature)
        if t not in seen:
            seen.add(t)
            yield t


SPLITS = 200  # random halvings for the spread of the out-of-fold figures
STARTS = 5  # random starts of the concept space's SVD, for the spread one start makes


def over_starts(devs, projects: dict, starts: int) -> dict:
    """The shipped constants with the concept space started `starts` ways (quality.start; the
    first is the shipped start): per set, the mean and standard deviation."""
    figures = []
    for s in range(starts):
        with start(s):
            for p in projects.values():
                p.forget()
            figures.append({d.name: d.score(list(d.readers), projects[d.name].scores(DEFAULT))
                            for d in devs})
    for p in projects.values():
        p.forget()
    return {d.name: (float(np.mean([f[d.name] for f in figures])),
                     float(np.std([f[d.name] for f in figures]))) for d in devs}


def gain(dev, value: float, base: float) -> float:
    """Relative improvement over the baseline, positive when better."""
    return (base - value) / base if dev.lower_is_better else (value - base) / base


def out_of_fold(devs, parts: dict, bases: dict, halves: dict) -> tuple[dict, dict]:
    """parts: {tuning: {set: (readers × 2) numerators and denominators, readers in sorted
    order}}; halves: {set: (rows of half 1, rows of half 2)} → (out-of-fold figure per set,
    the tuning chosen on each half). The constants are chosen on one half of every set at once
    (the mean gain over each set's TF-IDF baseline) and score the other half, both ways."""
    def figure(t, name, rows):
        num, den = parts[t][name][rows].sum(axis=0)
        return num / den
    chosen = {h: max(parts, key=lambda t, h=h: sum(
        gain(d, figure(t, d.name, halves[d.name][h]), bases[d.name]) for d in devs))
        for h in (0, 1)}
    out = {}
    for d in devs:  # each half's readers scored with what the other half chose
        num, den = sum(parts[chosen[1 - h]][d.name][halves[d.name][h]].sum(axis=0)
                       for h in (0, 1))
        out[d.name] = num / den
    return out, chosen


def reader_parts(devs, projects: dict, tunings) -> dict:
    """The `parts` out_of_fold takes, each tuning's scores ranked and dropped as it goes: kept
    whole, a tuning's scores of citeulike-dev's 300 readers are 1.3M floats in dicts, and a
    grid of them outgrew the machine's memory."""
    return {t: {d.name: d.parts(sorted(d.readers, key=str), projects[d.name].scores(t))
                for d in devs} for t in tunings}


def cross_validate(devs, parts: dict, bases: dict, splits: int = 0) -> tuple[dict, dict, dict]:
    """→ (out-of-fold figure per set on the fixed halves, every other reader in sorted order;
    the tuning chosen on each; and per set the mean and standard deviation of the out-of-fold
    figure over `splits` random halvings). One halving of 29 readers is one draw: the spread
    says how far its figure may be luck."""
    sizes = {d.name: len(d.readers) for d in devs}
    fixed = {n: (np.arange(0, k, 2), np.arange(1, k, 2)) for n, k in sizes.items()}
    out, chosen = out_of_fold(devs, parts, bases, fixed)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(splits):
        order = {n: rng.permutation(k) for n, k in sizes.items()}
        draws.append(out_of_fold(devs, parts, bases,
                                 {n: (o[0::2], o[1::2]) for n, o in order.items()})[0])
    spread = {d.name: (float(np.mean([x[d.name] for x in draws])),
                       float(np.std([x[d.name] for x in draws]))) for d in devs} if draws else {}
    return out, chosen, spread


def total(parts: np.ndarray) -> float:
    """A set's figure over all its readers, from their parts."""
    num, den = parts.sum(axis=0)
    return num / den


def spread_row(devs, spread: dict, label: str) -> str:
    return (f"| {label} | " + " | ".join(
        "{:.3f} ± {:.3f}".format(*spread[d.name]) if d.name in spread else "–" for d in devs)
        + " |")


def describe(t) -> str:
    changed = [f"{n}={getattr(t, n)}" for n in LEXICAL if getattr(t, n) != getattr(DEFAULT, n)]
    return ", ".join(changed) or "as shipped"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a few readers per set, a tiny grid")
    ap.add_argument("--semantic", action="store_true", help="also the semantic extra")
    ap.add_argument("--model", type=Path, metavar="DIR",
                    help="only the semantic rows, embedding with the sentence-transformers model "
                    "saved in DIR instead of the shipped one")
    a = ap.parse_args()
    if not EVAL.is_dir():
        print(f"skipped: {EVAL} is not here (benchmarks need ../shared beside the checkout)")
        return
    limit = 6 if a.smoke else None
    devs = [load(limit) for load in SETS.values()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    if a.model:
        use_model(a.model)
        rows, note = semantic_rows(devs, tmp, limit, a.smoke)
        print("\n".join([f"model: {a.model.name}", "| | " + " | ".join(
            f"{d.name} {d.metric}" for d in devs) + " |", "|---|" + "---|" * len(devs), *rows]))
        print(note)
        return
    projects = {}
    for d in devs:
        (tmp / d.name).mkdir()
        projects[d.name] = Project(d, tmp / d.name)
    names = {d.name: list(d.readers) for d in devs}
    baselines = {d.name: {k: d.score(names[d.name], f()) for k, f in d.baselines.items()}
                 for d in devs}
    tfidf = {d.name: next(iter(baselines[d.name].values())) for d in devs}
    tunings = list(grid((*LEXICAL, "temperature"), a.smoke))
    if DEFAULT not in tunings:
        tunings.append(DEFAULT)
    fitted = reader_parts(devs, projects, tunings)
    def safe(t):
        return all(getattr(t, n) not in v for n, v in UNSAFE.items())
    allowed = {t: r for t, r in fitted.items() if t.temperature == DEFAULT.temperature}
    runs = {t: r for t, r in allowed.items() if safe(t)}
    fitted = {t: r for t, r in fitted.items() if safe(t)}
    splits = 20 if a.smoke else SPLITS
    oof, chosen, spread = cross_validate(devs, runs, tfidf, splits)
    best_all = max(runs, key=lambda t: sum(gain(d, total(runs[t][d.name]), tfidf[d.name])
                                           for d in devs))
    ablations = {}
    for label, keep in (("no concept space", lambda t: t.concepts == 0),
                        ("no extra terms for small libraries", lambda t: t.term_budget == 0),
                        ("no query-likelihood view", lambda t: t.dirichlet == 0),
                        ("no sentence match for a few papers", lambda t: t.concept_sentences == 0)):
        sub = {t: r for t, r in runs.items() if keep(t)}
        if sub and len(sub) < len(runs):
            ablations[label] = cross_validate(devs, sub, tfidf)[0]
    ablations["the TF-IDF softness fitted too"] = cross_validate(devs, fitted, tfidf)[0]
    ablations["unsafe values allowed too (" + ", ".join(
        f"{n} {v}" for n, vs in UNSAFE.items() for v in vs) + ")"] = cross_validate(
        devs, allowed, tfidf)[0]
    # Does fitting each constant earn its keep? The same choice with that one held at its
    # shipped value; not out-of-fold, since that value was chosen on all readers.
    held = {n: cross_validate(devs, {t: r for t, r in runs.items()
                                     if getattr(t, n) == getattr(DEFAULT, n)}, tfidf, splits)[2]
            for n in LEXICAL}

    rows = [("| | " + " | ".join(f"{d.name} {d.metric}" for d in devs) + " |"),
            "|---|" + "---|" * len(devs)]
    kinds = sorted({k for b in baselines.values() for k in b})
    for k in kinds:
        rows.append(f"| baseline: {k} | " + " | ".join(
            f"{baselines[d.name][k]:.3f}" if k in baselines[d.name] else "–" for d in devs) + " |")
    rows.append("| digest, shipped constants (in-fold) | " + " | ".join(
        f"{total(runs[DEFAULT][d.name]):.3f}" for d in devs) + " |")
    rows.append("| digest, best on all readers (in-fold) | " + " | ".join(
        f"{total(runs[best_all][d.name]):.3f}" for d in devs) + " |")
    rows.append("| **digest, out-of-fold** | " + " | ".join(f"**{oof[d.name]:.3f}**" for d in devs) + " |")
    rows.append(spread_row(devs, spread, f"out-of-fold, mean ± sd over {splits} random halvings"))
    for n, figs in held.items():
        rows.append(spread_row(devs, figs, f"the same, {n} held at {getattr(DEFAULT, n)} "
                               "(chosen on all readers: not out-of-fold)"))
    for label, figs in ablations.items():
        rows.append(f"| out-of-fold, {label} | " + " | ".join(f"{figs[d.name]:.3f}" for d in devs) + " |")
    starts = 2 if a.smoke else STARTS
    rows.append(spread_row(devs, over_starts(devs, projects, starts),
                           f"shipped, mean ± sd over {starts} random starts of the concept space "
                           "(in-fold)"))
    for label, t in (("seed papers on 100 terms, not 40", DEFAULT.with_(seed_terms=100)),):
        rows.append(f"| shipped, {label} (in-fold) | " + " | ".join(
            f"{d.score(names[d.name], projects[d.name].scores(t)):.3f}" for d in devs) + " |")
    notes = []
    if a.semantic:
        more, note = semantic_rows(devs, tmp, limit, a.smoke)
        rows += more
        notes.append(note)
    print("\n".join(rows))
    print("\nreaders: " + ", ".join(f"{d.name} {len(d.readers)}" for d in devs)
          + f"; lexical grid {len(runs)}; chosen on half 1: {describe(chosen[0])}; "
          f"on half 2: {describe(chosen[1])}; on all: {describe(best_all)}")
    print("\n".join(notes))
    print("lower is better for pairwise error; higher for NDCG and recall")


def semantic_rows(devs, tmp: Path, limit, smoke: bool) -> tuple[list[str], str]:
    """The semantic extra on the sets with real text (citeulike's texts are bags of words)."""
    real = [d for d in devs if d.name != "citeulike-dev"]
    projects = {}
    for d in real:
        (tmp / f"{d.name}-semantic").mkdir()
        projects[d.name] = Project(d, tmp / f"{d.name}-semantic", semantic=True)
    names = {d.name: list(d.readers) for d in real}
    temps = RULED_OUT["semantic_temperature"]
    temps = temps if not smoke else (DEFAULT.semantic_temperature, temps[0])
    shares = GRID["semantic_share"] if not smoke else (DEFAULT.semantic_share,)
    titles = GRID["title_share"] if not smoke else (DEFAULT.title_share, 0.0)
    # The softness is tried at the shipped title share only: 24 rankings, not 60.
    tried = {DEFAULT.with_(semantic_temperature=x, semantic_share=y, title_share=z)
             for x in temps for y in shares for z in titles
             if x == DEFAULT.semantic_temperature or z == DEFAULT.title_share}
    fitted = reader_parts(real, projects, sorted(tried, key=repr))
    runs = {t: r for t, r in fitted.items()
            if t.semantic_temperature == DEFAULT.semantic_temperature}
    base = {d.name: total(runs[next(iter(runs))][d.name]) for d in real}
    splits = 20 if smoke else SPLITS
    oof, chosen, spread = cross_validate(real, runs, base, splits)
    oof_fitted = cross_validate(real, fitted, base)[0]
    best = max(runs, key=lambda t: sum(gain(d, total(runs[t][d.name]), base[d.name])
                                       for d in real))

    def row(label, figures):
        return f"| {label} | " + " | ".join(
            f"{figures[d.name]:.3f}" if d.name in figures else "–" for d in devs) + " |"
    shipped = {d.name: total(runs[DEFAULT][d.name]) for d in real if DEFAULT in runs}

    def say(t):
        return f"semantic_share={t.semantic_share}, title_share={t.title_share}"
    note = f"semantic: chosen per half {say(chosen[0])}; {say(chosen[1])}; on all {say(best)}"
    whole = sentence_match.SENTENCE_PAPERS
    try:  # the ablation: one vector per abstract, however small the library
        sentence_match.SENTENCE_PAPERS = 0
        no_sentences = {d.name: d.score(names[d.name], projects[d.name].scores(DEFAULT))
                        for d in real}
    finally:
        sentence_match.SENTENCE_PAPERS = whole
    n_starts = 2 if smoke else STARTS
    starts = over_starts(real, projects, n_starts)
    return [row("digest + semantic, shipped (in-fold)", shipped),
            row("**digest + semantic, out-of-fold**", oof),
            spread_row(devs, spread, f"digest + semantic, out-of-fold, mean ± sd over {splits} "
                       "random halvings"),
            row("digest + semantic, out-of-fold, the embedding softness fitted too", oof_fitted),
            spread_row(devs, starts, f"shipped + semantic, mean ± sd over {n_starts} random starts "
                       "of the concept space (in-fold)"),
            row("shipped + semantic, whole abstracts only, no sentence match (in-fold)",
                no_sentences),
            row("shipped + semantic, no title match (in-fold)",
                {d.name: total(fitted[DEFAULT.with_(title_share=0.0)][d.name]) for d in real})], note

if __name__ == "__main__":
    main()
