#!/usr/bin/env python3
"""Plots a soak run's samples (loadtest/soak.sh's CSV) into a PNG.

    soak_plot.py SOAK.CSV OUT.PNG WARMUP_S [TITLE]

Three panels over time: each process's RSS (MiB), each process's open file
descriptors, and Redis's used memory (MiB); the warm-up is shaded.
Needs matplotlib (`python3 -m pip install matplotlib`).
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    path, out, warmup = sys.argv[1], sys.argv[2], float(sys.argv[3])
    title = sys.argv[4] if len(sys.argv) > 4 else "soak"
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(v != "" for v in r.values())]
    minutes = [float(r["elapsed_s"]) / 60 for r in rows]
    processes = [c[: -len("_rss_kib")] for c in rows[0] if c.endswith("_rss_kib")]
    fig, (rss, fds, redis) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for p in processes:
        rss.plot(minutes, [float(r[f"{p}_rss_kib"]) / 1024 for r in rows], label=p)
        fds.plot(minutes, [float(r[f"{p}_fds"]) for r in rows], label=p)
    redis.plot(minutes, [float(r["redis_used_memory_bytes"]) / 2**20 for r in rows], color="tab:red")
    rss.set_ylabel("RSS (MiB)")
    fds.set_ylabel("open file descriptors")
    redis.set_ylabel("Redis used_memory (MiB)")
    redis.set_xlabel("minutes")
    for ax in (rss, fds, redis):
        ax.axvspan(0, warmup / 60, color="0.9", label="warm-up")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    rss.legend(loc="lower right", fontsize=8, ncol=4)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main()
