"""Learning from votes, on citeulike-dev: does a reader's 👍/👎 make the next digest better?

    python benchmarks/bench_feedback.py           # 300 readers, five days
    python benchmarks/bench_feedback.py --smoke   # CI size

Each reader's library is 75 % of a real CiteULike library; the other 25 % is hidden in one pool
of 4,280 papers. Every simulated day the reader gets a digest of 20 from what is left of the
pool through the ranker's digest path (Ranker.digest, as compose uses it), votes 👍 on the items
that are in their hidden part and 👎 on up to three others through Store.set_vote (what the
feedback page's POST calls), and those items leave their pool. The run without votes is the
same days with the same items leaving, and no votes recorded. Reported: recall@20 of what is
still hidden, day by day, over the readers who still have something hidden that day.
vote_half and dislike (digest/rank/tuning.py) are chosen by 2-fold cross-validation over
readers on the mean recall of days 2-5 (the days votes can act on: day 5 alone rests on the
few hidden papers four digests left, and a choice made on it chases noise); the figures with
votes are out-of-fold. The day-5 ratio comes with a 90 % bootstrap interval over readers,
resampled in pairs (the same readers with and without votes). Two in-fold rows show what
each part of the votes' path does: the shipped constants without the vote model, and without
the 👎 penalty. Last, the two ratios for each of five random starts of the concept space
(quality.start): day 5 rests on a few hits, and the start moves them.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import EVAL, LINK, NOW, Project, citeulike, start

from digest.rank import Ranker, Selection, Tuning
from digest.rank.tuning import DEFAULT, GRID

DAYS, DIGEST, DISLIKES = 5, 20, 3
STARTS = 5  # random starts of the concept space, for the ratios' spread over them


def simulate(tmp: Path, dev, hidden: dict, votes: bool, tuning: Tuning) -> tuple[dict, dict]:
    """({reader: [recall@20 per day]}, {reader: [share of all their hidden papers shown so
    far, per day]}) for one run. A reader with nothing left to find has no recall that day
    (None): counting it as 0 would charge a run for having found everything sooner."""
    project = Project(dev, tmp)
    store, config = project.store, project.config
    entries = store.entries_for_ranking()
    own = {name: {p["title"] for p in lib} for name, lib in dev.readers.items()}
    gone = {name: set() for name in dev.readers}
    recall = {name: [] for name in dev.readers}
    found = {name: [] for name in dev.readers}
    for day in range(DAYS):
        ranker = Ranker(config, store, entries, NOW + timedelta(days=day), None, tuning)
        jobs = []
        for key, name in project.names.items():
            rows = [i for i, e in enumerate(entries)
                    if e.link not in gone[name] and e.title not in own[name]]
            jobs.append((config.users[key], np.asarray(rows, dtype=np.int64)))
        picked = ranker.rank_many(jobs, selection=Selection(DIGEST, -1e9, 0))
        for user, items in picked:
            name = project.names[user.name]
            left = {LINK + i for i in hidden[name]} - gone[name]
            hits = [r for r in items if r.link in left]
            recall[name].append(len(hits) / min(len(left), DIGEST) if left else None)
            before = found[name][-1] if found[name] else 0.0
            found[name].append(before + len(hits) / max(len(hidden[name]), 1))
            misses = [r for r in items if r.link not in left][:DISLIKES]
            for r, vote in [(r, +1) for r in hits] + [(r, -1) for r in misses]:
                if votes:
                    store.set_vote(user.name, r.id, vote, NOW + timedelta(days=day))
                gone[name].add(r.link)
    return recall, found


def mean(xs) -> float:
    """The mean of the figures that exist (a day's recall is None for a reader with nothing
    left to find)."""
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a few readers, one vote_half")
    a = ap.parse_args()
    if not EVAL.is_dir():
        print(f"skipped: {EVAL} is not here (benchmarks need ../shared beside the checkout)")
        return
    dev = citeulike(limit=8 if a.smoke else None)
    hidden = dev.hidden
    tmp = Path(tempfile.mkdtemp(prefix="bench-feedback-"))
    grid = [DEFAULT] if a.smoke else [DEFAULT.with_(vote_half=h, dislike=d)
                                      for h in GRID["vote_half"] for d in GRID["dislike"]]
    (tmp / "none").mkdir()
    without, found_without = simulate(tmp / "none", dev, hidden, False, DEFAULT)
    runs, found = {}, {}
    for k, t in enumerate(grid):
        (tmp / f"votes{k}").mkdir()
        runs[t], found[t] = simulate(tmp / f"votes{k}", dev, hidden, True, t)
    # What each part of the votes' path does: the shipped constants without the vote model
    # (share 0), and without the 👎 penalty; in-fold, as the shipped row. A grid run is reused.
    parts = {"without the vote model": DEFAULT.with_(vote_half=math.inf),
             "without the 👎 penalty": DEFAULT.with_(dislike=0.0)}
    ablations = {}
    for k, (part, t) in enumerate(parts.items()):
        if t in runs:
            ablations[part] = runs[t]
            continue
        (tmp / f"part{k}").mkdir()
        ablations[part] = simulate(tmp / f"part{k}", dev, hidden, True, t)[0]
    names = sorted(dev.readers, key=str)
    folds = (names[0::2], names[1::2])
    def objective(t, readers):
        return mean([x for n in readers for x in runs[t][n][1:]])
    chosen = [max(runs, key=lambda t, fold=fold: objective(t, fold)) for fold in folds]
    best = max(runs, key=lambda t: objective(t, names))
    oof = {n: runs[chosen[1 - k]][n] for k, fold in enumerate(folds) for n in fold}
    print("| day | " + " | ".join(str(d + 1) for d in range(DAYS)) + " |")
    print("|---|" + "---|" * DAYS)
    print("| recall@20, no votes | " + " | ".join(
        f"{mean([without[n][d] for n in names]):.3f}" for d in range(DAYS)) + " |")
    print(f"| recall@20, votes, shipped {label(DEFAULT)} (in-fold) | " + " | ".join(
        f"{mean([runs[DEFAULT][n][d] for n in names]):.3f}" for d in range(DAYS)) + " |")
    for part, run in ablations.items():
        print(f"| recall@20, votes, shipped {part} (in-fold) | " + " | ".join(
            f"{mean([run[n][d] for n in names]):.3f}" for d in range(DAYS)) + " |")
    print("| **recall@20, votes, out-of-fold** | " + " | ".join(
        f"**{mean([oof[n][d] for n in names]):.3f}**" for d in range(DAYS)) + " |")
    shown = {n: found[chosen[1 - k]][n] for k, fold in enumerate(folds) for n in fold}
    print("| hidden papers shown so far, no votes | " + " | ".join(
        f"{mean([found_without[n][d] for n in names]):.3f}" for d in range(DAYS)) + " |")
    print("| hidden papers shown so far, votes, out-of-fold | " + " | ".join(
        f"{mean([shown[n][d] for n in names]):.3f}" for d in range(DAYS)) + " |")
    # None (nothing left to find) as NaN: each run's mean is over its readers still looking.
    def last_day(yes, no):
        return np.asarray([(yes[n][-1], no[n][-1]) for n in names], dtype=float)

    def ratios_of(yes, no):  # (day 5, days 2–5 together), votes / no votes
        return ratio(*np.nanmean(last_day(yes, no), axis=0)), ratio(
            *[mean([x for n in names for x in run[n][1:]]) for run in (yes, no)])
    pairs = last_day(oof, without)
    looking = (~np.isnan(pairs)).sum(axis=0)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw where a run found everything
        draws = np.nanmean(pairs[rng.integers(0, len(pairs), (2000, len(pairs)))], axis=1)
    draws = draws[draws[:, 1] > 0]
    interval = ("90 % interval over readers {:.2f}–{:.2f}×".format(
        *np.percentile(draws[:, 0] / draws[:, 1], [5, 95])) if len(draws) else "no interval")
    day_5, later = ratios_of(oof, without)
    print(f"\nreaders {len(names)}; chosen per half: {label(chosen[0])}; {label(chosen[1])}; "
          f"on all: {label(best)}; day-{DAYS} ratio votes / no votes (out-of-fold): "
          f"{day_5} ({interval}); "
          f"days 2–{DAYS} together: {later}; readers with hidden papers left on day "
          f"{DAYS}: {looking[0]} with votes, {looking[1]} without")
    together = {"no votes": without, "votes, out-of-fold": oof, **ablations}
    print(f"recall@20 on days 2–{DAYS} together (over readers and days): " + "; ".join(
        f"{k} {mean([x for n in names for x in run[n][1:]]):.3f}" for k, run in together.items()))
    # The concept space is a draw of its own (quality.start), and day 5 rests on a few hits:
    # the shipped constants' ratios, with and without votes, for each start (the first is
    # the runs above: the shipped constants' own, which the out-of-fold choice need not be).
    ratios = [ratios_of(runs[DEFAULT], without)]
    for s in range(1, 2 if a.smoke else STARTS):
        with start(s):
            (tmp / f"start{s}").mkdir()
            (tmp / f"start{s}-votes").mkdir()
            no = simulate(tmp / f"start{s}", dev, hidden, False, DEFAULT)[0]
            yes = simulate(tmp / f"start{s}-votes", dev, hidden, True, DEFAULT)[0]
        ratios.append(ratios_of(yes, no))
    print(f"over {len(ratios)} random starts of the concept space (the first as shipped; "
          f"shipped constants): day-{DAYS} ratio " + ", ".join(r[0] for r in ratios)
          + f"; days 2–{DAYS} " + ", ".join(r[1] for r in ratios))


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "– (nothing found without votes)"


def label(t: Tuning) -> str:
    return f"vote_half={t.vote_half:g}, dislike={t.dislike:g}"


if __name__ == "__main__":
    main()
