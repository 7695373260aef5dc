"""The cost of continual evaluation (eval.every), measured side by side; writes its section of
results/BENCHMARKS.md.

    python experiments/bench_continual.py [--repeats N] [--quick]

The quickstart (3 experiences, 2,000 training sequences each, 10 epochs) with 1,000 test sequences
per experience, trained with continual evaluation off and with ``eval.every: 50`` (every
experience seen so far, the whole 1,000 of each, every 50 iterations: the issue's setting), in the
training thread and with ``eval.background: true`` (a copy of the model evaluated in a second
thread, on the second core), and with ``eval.every: 200``, alternating, each in this process with
one torch thread. Compared: the training time the run
records (``meta.json`` timings, ``train_s``, which includes the periodic evaluations), medians and
the quartiles of the paired ratios. Target: at most 1.15x.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from bench_common import section_main  # beside this script

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench_continual:start -->", "<!-- bench_continual:end -->"


COUNTS: dict = {}
BACKGROUND = ["eval.every=50", "eval.background=true"]


def train_seconds(config: dict, out: Path, extra: list[str]) -> float:
    from clstm.plugins import continual
    from clstm.run.runner import run_experiment

    spent = {"s": 0.0, "steps": 0}
    evaluate = continual.ContinualEvalPlugin._evaluate

    def timed(self, strategy):  # the evaluations' own time, measured around them
        t0 = time.perf_counter()
        evaluate(self, strategy)  # in the background: the copy and the hand-over alone
        spent["s"] += time.perf_counter() - t0
        if self.background:
            return  # the counts below come from the runs in the training thread
        trained = int(strategy.experience.current_experience)
        for j in range(min(trained + 1, len(self.indices["test"]))):  # sequence steps forwarded
            batches = self._batch("test", j, "cpu")
            spent["steps"] += sum(x.shape[0] * x.shape[1] for x, *_ in batches)

    continual.ContinualEvalPlugin._evaluate = timed
    try:
        result = run_experiment(config, out=out, overrides=extra, threads=1, overwrite=True)
    finally:
        continual.ContinualEvalPlugin._evaluate = evaluate
    meta = json.loads((result.run_dir / "meta.json").read_text())
    curves = result.metrics.get("curves")
    if curves:  # sequences the periodic evaluations forwarded, and the training's
        n = min(config["benchmark"]["n_test"], 1000)
        key = " ".join(extra)  # one entry per contender
        COUNTS[key] = {
            "evaluated": n * len(curves["streams"]["test"]["accuracy"]["value"]),
            "trained": curves["boundaries"][-1] * config["train"]["batch_size"],
            "eval_s": COUNTS.get(key, {}).get("eval_s", []) + [spent["s"]],
            "steps": spent["steps"],
        }
    return sum(t["train_s"] for t in meta["timings"])


def measure(repeats: int, quick: bool) -> dict:
    config = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    config["benchmark"]["n_test"] = 1000
    if quick:
        config["benchmark"].update(n_train=200, n_test=100)
        config["train"]["epochs"] = 1
    off, on, background, sparse = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        train_seconds(config, Path(tmp) / "warm", [])  # imports, first-time allocations
        for _ in range(repeats):
            off.append(train_seconds(config, Path(tmp) / "off", []))
            on.append(train_seconds(config, Path(tmp) / "on", ["eval.every=50"]))
            background.append(train_seconds(config, Path(tmp) / "bg", BACKGROUND))
            sparse.append(train_seconds(config, Path(tmp) / "sparse", ["eval.every=200"]))

    def ratios(times):
        r = sorted(b / a for a, b in zip(off, times, strict=True))
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
        return statistics.median(r), q[0], q[2]

    m, q1, q3 = ratios(on)
    m200, q1_200, q3_200 = ratios(sparse)
    mbg, q1_bg, q3_bg = ratios(background)
    model = config["model"]
    hidden, features = model["hidden_size"], config["benchmark"]["n_features"]
    return {"off_s": off, "on_s": on, "sparse_s": sparse, "ratio_median": m, "ratio_q1": q1,
            "ratio_q3": q3, "sparse_median": m200, "sparse_q1": q1_200, "sparse_q3": q3_200,
            "background_s": background, "bg_median": mbg, "bg_q1": q1_bg, "bg_q3": q3_bg,
            # one LSTM step's forward: 4 gates' matmuls, 2 FLOP per multiply-add
            "step_flop": 8 * hidden * (features + hidden), "peak_gflops": sgemm_peak(),
            "counts": dict(COUNTS)}  # fmt: skip


def sgemm_peak() -> float:
    """One thread's float32 matmul rate (GFLOP/s), 1024 x 1024, best of 5."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 1024**3 / best / 1e9


def section(data: dict, machine: str, repeats: int) -> str:
    ok = data["ratio_median"] <= 1.15
    ok_bg = data["bg_median"] <= 1.15
    return "\n".join([
        START,
        "## 7. Continual evaluation (`eval.every`)",
        "",
        f"Generated by `python experiments/bench_continual.py` on {time.strftime('%Y-%m-%d')}, "
        f"{machine}, one torch thread, {repeats} alternating pairs. The quickstart with 1,000 test "
        "sequences per experience; training time as the run records it, with the periodic "
        "evaluations inside it.",
        "",
        "| contender | training time, median (s) |",
        "|---|---|",
        f"| continual evaluation off | {statistics.median(data['off_s']):.2f} |",
        f"| `eval.every: 50` (3 experiences x 1,000 sequences) | "
        f"{statistics.median(data['on_s']):.2f} |",
        f"| `eval.every: 50`, `eval.background: true` (a second thread) | "
        f"{statistics.median(data['background_s']):.2f} |",
        f"| `eval.every: 200` | {statistics.median(data['sparse_s']):.2f} |",
        "",
        "Paired ratios against off (median, quartiles; target <= 1.15x):",
        "",
        f"- `eval.every: 50` in the training thread: **{data['ratio_median']:.3f}x** "
        f"({data['ratio_q1']:.3f}-{data['ratio_q3']:.3f}), {'met' if ok else 'NOT met'};",
        f"- `eval.every: 50` with `eval.background: true`: **{data['bg_median']:.3f}x** "
        f"({data['bg_q1']:.3f}-{data['bg_q3']:.3f}), {'met' if ok_bg else 'NOT met'}, on the "
        "machine's second core (the same curves: tests/test_continual.py);",
        f"- `eval.every: 200`: {data['sparse_median']:.3f}x "
        f"({data['sparse_q1']:.3f}-{data['sparse_q3']:.3f}).",
        "",
        _counts(data),
        END,
    ])  # fmt: skip


def _counts(data: dict) -> str:
    """What the evaluations cost in arithmetic: sequences forwarded against sequences trained, and
    the evaluations' rate against one core's matmul peak."""
    c = (data.get("counts") or {}).get("eval.every=50")
    if not c:
        return ""
    eval_s = statistics.median(c["eval_s"])
    gflop = c["steps"] * data["step_flop"] / 1e9
    at_peak = gflop / data["peak_gflops"] / statistics.median(data["off_s"])
    verdict = (
        "In one thread, the target is out of reach at this size"
        if at_peak > 0.15
        else "In one thread, the rest is the evaluations' efficiency below the peak"
    )
    return (
        f"Where the time goes, in the training thread: every 50 iterations, the evaluations "
        f"forward {c['evaluated']:,} sequences in all (batches of 512, sorted by length and cut to "
        f"their longest: {c['steps']:,} sequence steps, {gflop:.1f} GFLOP of LSTM matmuls); the "
        f"training forwards and back-propagates {c['trained']:,} (batches of 32). The "
        f"evaluations took {eval_s:.2f} s per run (median, timed around them), "
        f"{gflop / eval_s:.1f} GFLOP/s against one thread's sgemm peak of "
        f"{data['peak_gflops']:.1f} (1024 x 1024) measured in the same run: the arithmetic "
        f"alone, at the peak, would take {gflop / data['peak_gflops']:.2f} s, "
        f"{100 * at_peak:.0f}% of the training time. {verdict}; evaluate "
        "less often (`eval.every`), on fewer sequences (`eval.subsample`), or in the background "
        "where the run has a core to spare (not with `--workers` equal to the cores)."
    )


def main() -> None:
    section_main(__doc__, measure, section, START, END)


if __name__ == "__main__":
    main()
