"""Loading throughput and memory of the literature benchmarks, measured on generated files.

    python experiments/bench_data.py    # prints a table; writes its section of BENCHMARKS.md

Writes a full-size MNIST (60,000 + 10,000 random images in the official IDX format, gzipped as
distributed) into a temporary data root, then builds each benchmark in a fresh process and
reports wall time and peak resident memory next to the size of the data it holds. Also measures
a mixed stream (UCI-HAR-sized windows, 128 x 9, beside pixel-MNIST, 784 x 1) stored at each
dataset's own shape against every sample padded to one shape. Timings drift on a shared
machine; compare the ratios.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "smnist row (60k+10k, 28x28)": {"name": "smnist", "read": "row"},
    "smnist pixel (60k+10k, 784x1)": {"name": "smnist", "read": "pixel"},
    "pmnist row, 10 experiences (600k+100k)": {"name": "pmnist", "read": "row"},
}


def write_mnist(root: Path) -> None:
    from clstm.data import mnist

    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in
              (("train", 60_000), ("test", 10_000))}  # fmt: skip
    labels = {s: np.arange(len(images[s])) % 10 for s in images}
    mnist.write_files(root, images, labels, gz=True)


def measure(options: dict, root: Path) -> dict:
    """Build one benchmark in this process; wall time, peak RSS and tensor bytes."""
    import torch  # noqa: F401 - imported before timing, as in a run

    from clstm.config import load_config
    from clstm.data.registry import benchmark_module

    config = load_config({"benchmark": {**options, "root": str(root), "download": False}})
    start = time.perf_counter()
    bench = benchmark_module(options["name"]).build(config.benchmark)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_rss_mb": peak_kib / 1024, "tensor_mb": stored_mb(bench)}


def stored_mb(bench) -> float:
    """MB held by the benchmark's sequence tensors, as stored (each counted once)."""
    from clstm.data.sequences import SequenceDataset

    seen: dict[int, int] = {}
    for stream in (bench.scenario.train_stream, bench.scenario.test_stream):
        for e in stream:
            stack = [getattr(e.dataset, "_flat_data", e.dataset)]
            while stack:
                node = stack.pop()
                if isinstance(node, SequenceDataset):
                    seen[id(node.x)] = node.x.numel() * node.x.element_size()
                stack.extend(getattr(node, "_datasets", None) or [])
    return sum(seen.values()) / 2**20


def padding_cost(store: str) -> dict:
    """A class-incremental stream of a UCI-HAR-sized dataset (10,299 windows of 128 x 9) and a
    pixel-MNIST-sized one (70,000 x 784 x 1), built for real with each dataset stored at its own
    shape (``own``, clstm's default) or every sample stored padded to the stream's (``stream``),
    then its training data stacked into batches as joint training does: tensor MB and peak RSS."""
    from avalanche.benchmarks.utils import concat_datasets

    from clstm.data import sequences
    from clstm.data.arrays import benchmark_from_arrays
    from clstm.data.batches import stacked

    rng = np.random.default_rng(0)
    har = rng.standard_normal((10_299, 128, 9)).astype(np.float32)
    pixel = rng.random((70_000, 784, 1), dtype=np.float32)
    y_har, y_pixel = np.arange(len(har)) % 6, np.arange(len(pixel)) % 10
    make = sequences.make_scenario
    sequences.make_scenario = lambda *args, **kw: make(*args, **kw, store=store)
    start = time.perf_counter()
    bench = benchmark_from_arrays(
        [(har[:7352], y_har[:7352]), (pixel[:60_000], y_pixel[:60_000])],
        [(har[7352:], y_har[7352:]), (pixel[60_000:], y_pixel[60_000:])],
        scenario="class", names=["HAR", "pixel-MNIST"], standardize=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    del har, pixel
    joint = concat_datasets([e.dataset for e in bench.scenario.train_stream])
    start = time.perf_counter()
    batches = stacked(joint, max_bytes=2**40)
    stack_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, 64 * 50, 64):  # 50 batches mixing both datasets
        batches[np.random.default_rng(i).choice(len(joint), 64, replace=False).tolist()]
    batch_ms = (time.perf_counter() - start) / 50 * 1e3
    return {
        "build_seconds": seconds,
        "stack_seconds": stack_seconds,
        "batch_ms": batch_ms,
        "tensor_mb": stored_mb(bench),
        "stacked_mb": batches.nbytes / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--case":  # child process: one measurement
        print(json.dumps(measure(json.loads(sys.argv[2]), Path(sys.argv[3]))))
        return
    if sys.argv[1:] == ["--render"]:  # the section again from the last measurements
        result = json.loads((ROOT / "results" / "BENCHMARKS_DATA.json").read_text())
        write_section(ROOT / "results" / "BENCHMARKS.md", markdown(result))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--padding":
        print(json.dumps(padding_cost(sys.argv[2])))
        return
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_mnist(Path(tmp))
        print(f"wrote 70,000 MNIST images as gzipped IDX in {time.perf_counter() - start:.1f} s")
        for label, options in CASES.items():
            out = subprocess.run(
                [sys.executable, __file__, "--case", json.dumps(options), tmp],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows[label] = json.loads(out.stdout.strip().splitlines()[-1])
            r = rows[label]
            print(f"{label:<42} {r['seconds']:6.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  "
                  f"tensors {r['tensor_mb']:7.0f} MB")  # fmt: skip
    padding = {}
    for store in ("stream", "own"):
        out = subprocess.run(
            [sys.executable, __file__, "--padding", store],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        padding[store] = r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"mixed stream stored {store:<6}: tensors {r['tensor_mb']:5.0f} MB, stacked for "
            f"joint {r['stacked_mb']:5.0f} MB, peak RSS {r['peak_rss_mb']:5.0f} MB, built in "
            f"{r['build_seconds']:.1f} s, a mixed batch of 64 in {r['batch_ms']:.2f} ms"
        )
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "python": platform.python_version(),
        "cases": rows,
        "mixed_stream_padding": padding,
    }
    (ROOT / "results" / "BENCHMARKS_DATA.json").write_text(json.dumps(result, indent=2) + "\n")
    write_section(ROOT / "results" / "BENCHMARKS.md", markdown(result))


def own_minimum(r: dict) -> float:
    """MB of the mixed stream at each experience's own shape, mask channel included."""
    return (10_299 * 128 * 10 + 70_000 * 784 * 2) * 4 / 2**20


def markdown(result: dict) -> str:
    """The section of results/BENCHMARKS.md this script owns."""
    lines = [
        "<!-- bench_data:start -->",
        "## 6. Loading the literature benchmarks",
        "",
        f"Generated by `python experiments/bench_data.py` on {time.strftime('%Y-%m-%d')} "
        f"({result['machine']}, Python {result['python']}); each case is built in a fresh "
        "process from a full-size MNIST written in the official gzipped IDX format (random "
        "pixels). Peak RSS includes about 0.8 GB of imported torch and Avalanche (measured "
        "the same way).",
        "",
        "| benchmark | build time | peak RSS | tensors held |",
        "|---|---|---|---|",
    ]
    for label, r in result["cases"].items():
        size = f"{r['peak_rss_mb']:.0f} MB | {r['tensor_mb']:.0f} MB"
        lines.append(f"| {label} | {r['seconds']:.1f} s | {size} |")
    p = result["mixed_stream_padding"]
    one, own = p["stream"], p["own"]
    ratio = one["peak_rss_mb"] / own["peak_rss_mb"]
    lines += [
        "",
        "**A mixed stream: each dataset stored at its own shape.** A class-incremental stream of "
        "a UCI-HAR-sized dataset (10,299 windows of 128 x 9) and a pixel-MNIST-sized one "
        "(70,000 x 784 x 1), built with `benchmark_from_arrays` and its training data stacked "
        "for joint training, in a fresh process each way (`store` is `make_scenario`'s "
        "argument; samples read the same either way, and `tests/test_strategies.py` checks "
        "every strategy's accuracy matrix is bitwise the same):",
        "",
        "| stored | tensors | stacked for joint | peak RSS | build | a mixed batch of 64 |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in (("every sample padded to 784 x 10 (before)", one), ("own shape (now)", own)):
        lines.append(
            f"| {label} | {r['tensor_mb']:.0f} MB | {r['stacked_mb']:.0f} MB | "
            f"{r['peak_rss_mb']:.0f} MB | {r['build_seconds']:.1f} s | {r['batch_ms']:.2f} ms |"
        )
    verdict = "met" if own["tensor_mb"] <= 2 * own_minimum(own) else "NOT met"
    lines += [
        "",
        f"Tensors held: {one['tensor_mb'] / own['tensor_mb']:.1f}x less stored at own shapes; "
        f"peak RSS (imports included) {ratio:.1f}x less. Target (at most 2x what each "
        f"experience holds at its own shape): **{verdict}** - own-shape storage is that "
        "minimum (plus the mask channel).",
        "<!-- bench_data:end -->",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the marked section of ``path``, atomically."""
    import os

    text = path.read_text() if path.is_file() else ""
    if "<!-- bench_data:start -->" in text:
        start = text.index("<!-- bench_data:start -->")
        end = text.index("<!-- bench_data:end -->") + len("<!-- bench_data:end -->")
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
