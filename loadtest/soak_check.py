#!/usr/bin/env python3
"""Judges a soak run's samples (loadtest/soak.sh writes them).

    soak_check.py SOAK.CSV WARMUP_S [END_S]

Every column after `elapsed_s` is one series (a process's RSS or open file
descriptors, Redis's used memory). For each, the median of the samples in the
first window after the warm-up is compared with the median of the last window
before END_S (default: the last sample); a window is a tenth of that span, at
least 3 samples. Medians, so that one sample taken mid-reconnect or mid-GC
does not decide. Exits 1 when any series grew by more than 5%; for open
file descriptors, by more than 5% and more than 2 (a count of 22 moves by
one whenever a request is in flight at the sample).
"""

import csv
import statistics
import sys

LIMIT = 0.05
FD_SLACK = 2


def main() -> int:
    path, warmup = sys.argv[1], float(sys.argv[2])
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(v != "" for v in r.values())]
    end = float(sys.argv[3]) if len(sys.argv) > 3 else float(rows[-1]["elapsed_s"])
    kept = [r for r in rows if warmup <= float(r["elapsed_s"]) <= end]
    if len(kept) < 6:
        print(f"soak_check: only {len(kept)} samples after the warm-up; run longer", file=sys.stderr)
        return 1
    window = max(3, len(kept) // 10)
    first, last = kept[:window], kept[-window:]
    failed = []
    print(f"{'series':<34} {'after warm-up':>14} {'at the end':>14} {'growth':>8}")
    for column in rows[0].keys():
        if column == "elapsed_s":
            continue
        a = statistics.median(float(r[column]) for r in first)
        b = statistics.median(float(r[column]) for r in last)
        growth = (b - a) / a if a else 0.0
        grew = growth > LIMIT and not (column.endswith("_fds") and b - a <= FD_SLACK)
        mark = "  FAIL" if grew else ""
        print(f"{column:<34} {a:>14.0f} {b:>14.0f} {growth:>+7.1%}{mark}")
        if grew:
            failed.append(column)
    span = float(kept[-1]["elapsed_s"]) - float(kept[0]["elapsed_s"])
    print(f"{len(kept)} samples over {span:.0f} s after a {warmup:.0f} s warm-up; windows of {window} samples")
    if failed:
        print(f"soak_check: grew by more than {LIMIT:.0%}: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
