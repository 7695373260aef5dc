"""Benchmark: `clstm run` of 4 quickstart runs with --workers 1 and --workers 2, side by side.

    python experiments/bench_workers.py [--repeats 3] [--quick]

Each measurement is the wall time of the whole command a researcher types (a fresh process:
imports included), ``clstm run experiments/quickstart.yaml --seeds 0-3 --workers N``. The two
settings alternate (1, 2, then 2, 1, ...) so machine noise hits both; medians and their ratio
are printed. ``--quick`` uses tiny runs (to check the script works, not the speed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parent / "quickstart.yaml"
QUICK = ["--set", "benchmark.n_train=64", "--set", "benchmark.n_test=32", "--set", "train.epochs=1"]


def timed_sweep(workers: int, out: str, quick: bool) -> float:
    command = [
        sys.executable, "-m", "clstm.cli", "run", str(QUICKSTART), "--seeds", "0-3",
        "--workers", str(workers), "--out", out, "--overwrite", "--quiet",
        *(QUICK if quick else []),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks the script only")
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as out:
        for repeat in range(args.repeats):
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
                times[workers].append(timed_sweep(workers, out, args.quick))
                print(
                    f"repeat {repeat + 1}: --workers {workers}: {times[workers][-1]:.1f} s",
                    flush=True,
                )
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"4 quickstart runs, median of {args.repeats}: "
        f"--workers 1 {one:.1f} s, --workers 2 {two:.1f} s"
    )
    print(f"speedup of --workers 2 over --workers 1: {one / two:.2f}x")


if __name__ == "__main__":
    main()
