"""Performance benchmarks, measured side by side in one run; writes results/BENCHMARKS.md.

    python experiments/bench.py                       # a few minutes on 2 cores
    python experiments/bench.py --quick --out X.md    # tiny sizes: checks the script, not speed

Sections (each contender alternates with the others, repeated; medians and their ratios):

1. overhead: clstm (naive + LSTMPlugin + the full evaluator, TensorBoard logging) against a
   hand-written PyTorch loop doing the same work (same LSTM, data, batches, epochs, Adam with the
   same per-experience LR reset/decay and gradient clipping, the accuracy matrix evaluated after
   every experience), and plain Avalanche ``Naive`` with its default evaluator. Fixed-length
   sequences, so every contender does the same arithmetic and only the structure differs.
2. varlen: lengths uniform in 8..256. clstm (length-bucketed batches trimmed to their longest
   sequence, read-out at each sequence's last real step, denormals flushed on CPU) against the
   usual hand-written recipe: every sequence padded at the front to the global maximum and the
   prediction read at the last step, with and without flushing denormals; plus clstm's model
   with ``PackedSequence`` (what it uses on CUDA).
3. eval: 10 experiences; the accuracy matrix's 11 evaluations of 10 test sets against training.
4. startup: ``clstm --help``, ``--version`` and ``list`` as fresh processes.
5. memory: peak resident memory of the quickstart, and of 10-experience naive and replay runs,
   with the replay buffer's size after every experience.

Beside this script: ``bench_common.py`` (settings, benchmarks, the contenders, alternating
them), ``bench_overhead.py`` (the overhead section's detailed tables) and ``bench_render.py``
(the Markdown report).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench_common import (  # beside this script (its directory is on sys.path when run)
    FULL,
    QUICK,
    REPLAY_MEM,
    ROOT,
    alternate,
    avalanche_naive,
    build_benchmark,
    clstm_model,
    clstm_run,
    front_padded,
    hand_loop,
    stream_tensors,
    timed,
)
from bench_overhead import (  # beside this script (its directory is on sys.path when run)
    fixed_cost_per_iteration,
    fixed_cost_per_run,
    model_and_stacking_apart,
    profile_iteration,
)
from bench_render import (  # beside this script (its directory is on sys.path when run)
    FLUSHED,
    OVERHEAD,
    SAME_MODEL,
    SECTIONS,
    USUAL,
    median,
    render,
)

# --------------------------------------------------------------------------- sections


def section_overhead(sizes, repeats, log) -> dict:
    import torch

    torch.set_flush_denormal(True)  # every contender: the same arithmetic speed
    tables = {}
    for key in OVERHEAD:
        setting = sizes[key]
        log(f"overhead, {key}: {setting.describe()}")
        bench = build_benchmark(setting)
        train = [(x[..., :-1], y) for x, y in stream_tensors(bench.scenario.train_stream)]
        test = [(x[..., :-1], y) for x, y in stream_tensors(bench.scenario.test_stream)]
        contenders = {
            "hand-written loop": lambda r, d=(train, test, setting): hand_loop(*d),
            "clstm": lambda r, d=(bench, setting): clstm_run(*d),
            "Avalanche Naive (default evaluator)": lambda r, d=(bench, setting): avalanche_naive(
                *d
            ),
        }
        if key != "large":  # the loop alone: clstm's model on both sides (bench_render.SAME_MODEL)
            full = (
                stream_tensors(bench.scenario.train_stream),
                stream_tensors(bench.scenario.test_stream),
            )
            contenders[SAME_MODEL] = lambda r, d=(*full, setting), b=bench: hand_loop(
                *d, make_model=lambda: clstm_model(b, d[-1])
            )
        results = alternate(contenders, repeats, log)
        tables[key] = {"setting": setting.describe(), "results": results}
    tables["apart"] = model_and_stacking_apart(sizes["tiny"], max(repeats, 5), log)
    tables["fixed"] = fixed_cost_per_iteration(sizes["small"], max(repeats, 5), log)
    tables["per_run"] = fixed_cost_per_run(max(repeats, 5), log)
    tables["profile"] = profile_iteration(sizes["small"], log)
    return tables


def section_varlen(sizes, repeats, log) -> dict:
    import torch

    setting = sizes["varlen"]
    log(f"variable lengths: {setting.describe()}")
    bench = build_benchmark(setting)
    train = [(front_padded(x), y) for x, y in stream_tensors(bench.scenario.train_stream)]
    test = [(front_padded(x), y) for x, y in stream_tensors(bench.scenario.test_stream)]

    def hand(r: int, flush: bool = True):
        torch.set_flush_denormal(flush)
        return hand_loop(train, test, replace(setting, seed=r))

    contenders = {
        "clstm": lambda r: clstm_run(bench, replace(setting, seed=r)),
        USUAL: lambda r: hand(r, flush=False),
        FLUSHED: hand,
    }
    results = alternate(contenders, repeats, log)  # repetition r: every contender uses seed r
    log("  once: clstm, model.packing: packed")
    results["clstm, model.packing: packed (1 run, seed 0)"] = timed_once(
        clstm_run, bench, setting, overrides=["model.packing=packed"]
    )
    torch.set_flush_denormal(True)
    return {"setting": setting.describe(), "results": results}


def timed_once(fn, *args, **kwargs) -> dict:
    seconds, rows = timed(fn, *args, **kwargs)
    return {"times": [seconds], "rows": rows, "all_rows": [rows]}


def section_eval(sizes, repeats, log) -> dict:
    from clstm.run.runner import run_experiment

    setting = sizes["eval"]
    log(f"evaluation cost: {setting.describe()}")
    bench = build_benchmark(setting)
    runs = []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            result = run_experiment(setting.config(), benchmark=bench, out=out, quiet=True)
            meta = json.loads((result.run_dir / "meta.json").read_text())
        train = sum(t["train_s"] for t in meta["timings"])
        evaluation = meta["initial_eval_s"] + sum(t["eval_s"] for t in meta["timings"])
        runs.append({"train": train, "eval": evaluation, "n_eval": 1 + len(meta["timings"])})
        log(f"  repeat {r + 1}: training {train:.2f} s, {runs[-1]['n_eval']} evaluations "
            f"{evaluation:.2f} s")  # fmt: skip
    return {"setting": setting.describe(), "runs": runs}


def clstm_command() -> list[str]:
    script = Path(sys.executable).parent / "clstm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "clstm.cli"]


def section_startup(repeats, log) -> dict:
    out = {}
    for args in (["--help"], ["--version"], ["list"]):
        times = []
        for _ in range(max(repeats, 5)):
            started = time.perf_counter()
            subprocess.run([*clstm_command(), *args], check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        out["clstm " + " ".join(args)] = times
        log(f"startup: clstm {' '.join(args)}: median {median(times):.3f} s")
    return out


def child_memory(kind: str, quick: bool) -> None:
    """Runs in a fresh process: one run, then prints peak RSS (and replay buffer sizes) as JSON."""
    import avalanche.training  # noqa: F401
    import torch

    import clstm.run.runner  # noqa: F401

    sizes = QUICK if quick else FULL
    report: dict = {"kind": kind, "rss_after_import_mb": current_rss_mb()}
    if kind == "import":
        pass
    elif kind == "quickstart":
        from clstm.run.runner import run_experiment

        overrides = ["benchmark.n_train=64", "train.epochs=1"] if quick else []
        with tempfile.TemporaryDirectory() as out:
            run_experiment(ROOT / "experiments" / "quickstart.yaml", out=out, overrides=overrides)
    else:
        from avalanche.training.plugins import SupervisedPlugin

        setting = sizes["replay"]
        probe_rows: list[dict] = []

        class MemoryProbe(SupervisedPlugin):
            """After each experience's evaluation (the replay plugin has updated its buffer)."""

            def after_eval(self, strategy, **kwargs):
                if strategy.clock.train_exp_counter == 0:
                    return  # the initial evaluation, before any training
                row = {"rss_mb": current_rss_mb()}
                for plugin in strategy.plugins:
                    policy = getattr(plugin, "storage_policy", None)
                    if policy is not None:
                        buffer = policy.buffer
                        x = buffer[0][0] if len(buffer) else torch.zeros(0)
                        row["buffer"] = len(buffer)
                        row["buffer_mb"] = len(buffer) * x.numel() * x.element_size() / 2**20
                probe_rows.append(row)

        bench = build_benchmark(setting)
        strategy = {"name": "replay", "mem_size": REPLAY_MEM} if kind == "replay" else None
        top = {"strategy": strategy} if strategy else {}
        clstm_run(bench, setting, plugins=[MemoryProbe()], **top)
        report["per_experience"] = probe_rows
        report["mem_size"] = REPLAY_MEM
    report["peak_rss_mb"] = peak_rss_mb()
    report["rss_end_mb"] = current_rss_mb()
    print(json.dumps(report))


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KiB


def section_memory(quick: bool, log) -> dict:
    out = {}
    for kind in ("import", "quickstart", "naive", "replay"):
        command = [sys.executable, __file__, "--child-memory", kind]
        command += ["--quick"] if quick else []
        result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        out[kind] = json.loads(result.stdout.strip().splitlines()[-1])
        log(f"memory: {kind}: peak RSS {out[kind]['peak_rss_mb']:.0f} MB")
    return out


# --------------------------------------------------------------------------- report


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} intra-op threads), CPU only"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script only")
    parser.add_argument("--repeats", type=int, default=None, help="default 4 (1 with --quick)")
    parser.add_argument("--out", default=None, help="default results/BENCHMARKS.md (not --quick)")
    parser.add_argument(
        "--sections", default=None, help="comma-separated subset of: " + ", ".join(SECTIONS)
    )
    parser.add_argument(
        "--from-json", default=None, help="re-render the table from a saved BENCHMARKS.json"
    )
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(args.child_memory, args.quick)
        return
    repeats = args.repeats or (1 if args.quick else 4)
    out = args.out or (None if args.quick else str(ROOT / "results" / "BENCHMARKS.md"))
    sizes = QUICK if args.quick else FULL

    def log(message: str) -> None:
        print(message, flush=True)

    from clstm.run.runner import quiet_library_warnings

    wanted = SECTIONS if args.sections is None else args.sections.split(",")
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    runners = {
        "overhead": lambda: section_overhead(sizes, repeats, log),
        "varlen": lambda: section_varlen(sizes, repeats, log),
        "eval": lambda: section_eval(sizes, min(repeats, 2), log),
        "startup": lambda: section_startup(repeats, log),
        "memory": lambda: section_memory(args.quick, log),
    }
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
    else:
        started = time.perf_counter()
        data = {
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d"),
            "quick": args.quick,
            "repeats": repeats,
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())
            if hasattr(os, "getloadavg")
            else "?",
            "eval_experiences": sizes["eval"].n_experiences,
            "replay_setting": sizes["replay"].describe(),
        }
        when = {k: data[k] for k in ("date", "repeats", "load")}
        with quiet_library_warnings():
            for name in SECTIONS:
                if name in wanted:
                    data[name] = runners[name]()
                    data.setdefault("measured", {})[name] = when
        data["seconds"] = time.perf_counter() - started
        saved = Path(out).with_suffix(".json") if out else None
        if args.sections is not None and not args.quick and saved is not None and saved.is_file():
            # some sections measured again: the others keep their measurements (and say when)
            kept = json.loads(saved.read_text())
            previous = {k: kept.get(k) for k in ("date", "repeats", "load")}
            measured = {name: previous for name in SECTIONS if name in kept}
            measured.update(kept.get("measured") or {})
            measured.update(data["measured"])
            data = {**kept, **data, "measured": measured, "seconds": kept.get("seconds", 0)}
    text, met = render(data)
    print(text)
    if out:
        old = Path(out).read_text() if Path(out).is_file() else ""
        if "<!-- bench_data:start -->" in old:  # experiments/bench_data.py's section is kept
            text += "\n\n" + old[old.index("<!-- bench_data:start -->") :].rstrip()
        write_atomic(Path(out), text + "\n")
        if not args.from_json:  # the measurements, to re-render the table without re-measuring
            write_atomic(Path(out).with_suffix(".json"), json.dumps(data, indent=1) + "\n")
        print(f"written: {out}")
    print(f"targets met: {sum(met)} of {len(met)}")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
