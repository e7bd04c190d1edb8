"""Exactly once under faults, at the size of the table in the README: the demo plus 12 readers
(15 reader-dates a date; 20 readers for the kill rounds), an aiosmtpd server on 127.0.0.1 that
misbehaves on cue, `digest send` and `digest run` as real processes, then `digest send` rerun
until it says nothing is left, as an operator would. Per scenario: reader-dates, messages that
arrived, duplicates, the reader-dates `digest check` names as unconfirmed, and the silent ones
(no message, not named). The scenarios themselves are tests/smtp_faults.py, which the test
suite runs small.

    python benchmarks/bench_faults.py            # the full table (a few minutes)
    python benchmarks/bench_faults.py --smoke    # CI size
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import smtp_faults as faults


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    extra, rounds, kills = (1, 1, 2) if a.smoke else (12, 3, 40)
    runs = {
        "two `digest send` for one date started together": lambda r: faults.concurrent_sends(
            r, rounds=rounds, extra_readers=extra),
        "the server stores, then replies after the client's timeout": lambda r: faults.late_reply(
            r, extra_readers=extra),
        "the server stores, then drops the connection": lambda r: faults.drop_after_storing(
            r, extra_readers=extra),
        "greylisting (451 first), a second `send` during the retry wait": lambda r:
            faults.greylisting(r, extra_readers=extra),
        f"SIGKILL of `digest send` mid-run, then reruns ({kills} rounds)": lambda r:
            faults.killed_mid_run(r, rounds=kills, extra_readers=extra + 5),
        "`digest run` start-up catch-up racing `digest send`": lambda r: faults.run_races_send(
            r, extra_readers=extra),
    }
    rows, total = [], faults.Tally()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, scenario) in enumerate(runs.items()):
            t0 = time.monotonic()
            t = scenario(Path(tmp) / f"s{i}")
            rows.append((name, t, time.monotonic() - t0))
            total.add(t)
    print("| fault | reader-dates | messages | duplicates | named unconfirmed | silent | "
          "runs that met a held row | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t, seconds in rows:
        print(f"| {name} | {t.reader_dates} | {t.messages} | {t.duplicates} | {t.unconfirmed} | "
              f"{t.silent} | {t.overlaps} | {seconds:.0f} |")
    print(f"| **all** | {total.reader_dates} | {total.messages} | **{total.duplicates}** | "
          f"{total.unconfirmed} | **{total.silent}** | {total.overlaps} | |")
    for p in total.problems:
        print("problem:", p)
    if total.duplicates or total.silent:
        raise SystemExit("exactly once failed: see the problems above")


if __name__ == "__main__":
    main()
