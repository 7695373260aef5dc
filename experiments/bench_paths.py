"""Hand-loop speed on the per-step and regression paths, the hardware's limit, and a long Copy Task
run's fixed costs, measured side by side; writes its section of results/BENCHMARKS.md.

    python experiments/bench_paths.py [--repeats N] [--quick]

- **Copy Task** (Ehret et al. 2021's permuted copy protocol, experiments/ehret2021_permuted_copy
  .yaml: vanilla RNN 256 with their Elman output layer, one head per task, Adam, clipping at 1,
  batch 128, one thread), 2 tasks x 2 epochs: clstm against a hand-written loop on the same
  tensors, which applies the output layer and the task's head at the target steps alone (a
  column slice: every sequence has its targets at the same steps), and against clstm computing
  every step's output (before issue 40; forced here by turning the step selection off).
- **Forecasting** (experiments/forecast_regimes.yaml's LSTM 64 and stream): clstm against a
  hand-written loop of the same model (LSTM read at the last step, a linear layer over the
  horizon), Adam with clstm's exponential LR decay and clipping.
- **Hardware**: the Copy Task step's floating-point work per second against one core's measured
  matmul peak (a large square sgemm) and the sgemm of the step's own shapes.
- **Long run**: the full protocol's fixed costs (data for 5 tasks x 100,000 sequences, the
  evaluation and the checkpoint after each experience) against its training time per experience
  (19,550 iterations at the measured time per iteration).

Times are training time (``meta.json``'s ``train_s``; the hand loops' around their training),
in this process with one torch thread; ratios are paired (median and quartiles).
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
START, END = "<!-- bench_paths:start -->", "<!-- bench_paths:end -->"


def experiment(name: str, **changes) -> dict:
    config = yaml.safe_load((ROOT / "experiments" / f"{name}.yaml").read_text())
    for section, values in changes.items():
        config.setdefault(section, {}).update(values)
    config["checkpoint"] = "off"  # the hand loops save nothing; checkpoints: the long-run table
    return config


def clstm_seconds(config: dict, out: Path) -> tuple[float, dict]:
    from clstm.run.runner import run_experiment

    result = run_experiment(config, out=out, threads=1, overwrite=True, quiet=True)
    meta = json.loads((result.run_dir / "meta.json").read_text())
    return sum(t["train_s"] for t in meta["timings"]), meta


def every_step(config: dict, out: Path) -> float:
    """clstm with every step's output computed (as before the step selection)."""
    import clstm.strategies.lean as lean

    kept = lean.gathers_steps
    lean.gathers_steps = lambda strategy: False
    try:
        return clstm_seconds(config, out)[0]
    finally:
        lean.gathers_steps = kept


def streams(config: dict):
    """The training stream's tensors ``[(x (N, T, F + 1), y), ...]``, built as clstm builds them."""
    from bench_common import stream_tensors

    from clstm.config import load_config
    from clstm.run.runner import build_benchmark

    return stream_tensors(build_benchmark(load_config(config)).scenario.train_stream)


def update(optimizer, loss, params, clip: float) -> None:
    """One hand-written update: gradients of ``loss``, their norm clipped to ``clip``, a step."""
    import torch

    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def copy_hand(train, config: dict) -> float:
    """The hand-written Copy Task loop: RNN, Elman output layer and the task's head at the
    target steps (the same columns in every sequence), summed BCE over the target bits / B."""
    import torch
    from torch import nn

    from clstm.targets import carried_steps

    t = config["train"]
    hidden, width = config["model"]["hidden_size"], train[0][1].shape[-1]
    torch.manual_seed(config["seed"])
    rnn = nn.RNN(train[0][0].shape[-1] - 1, hidden, batch_first=True)
    elman = nn.Linear(hidden, hidden)
    heads = nn.ModuleList(nn.Linear(hidden, width) for _ in train)
    params = [*rnn.parameters(), *elman.parameters(), *heads.parameters()]
    spent = 0.0
    for task, (x, y) in enumerate(train):
        steps = carried_steps(y)
        assert bool((steps == steps[:1]).all()), "the copy task's targets share their steps"
        cols = steps[0].nonzero().squeeze(1)
        values, targets = x[..., :-1].contiguous(), y[:, cols].contiguous()
        started = time.perf_counter()
        optimizer = torch.optim.Adam(params, lr=t["lr"])
        for _ in range(t["epochs"]):
            order = torch.randperm(len(x))
            for i in range(0, len(x), t["batch_size"]):
                index = order[i : i + t["batch_size"]]
                out, _ = rnn(values[index])
                logits = heads[task](torch.tanh(elman(out[:, cols])))
                loss = nn.functional.binary_cross_entropy_with_logits(
                    logits, targets[index], reduction="sum"
                ) / len(index)
                update(optimizer, loss, params, t["grad_clip"])
        spent += time.perf_counter() - started
    return spent


def copy_hand_clstm_model(train, config: dict) -> float:
    """The hand-written Copy Task loop with clstm's model and loss (the model handed each batch
    with its mask channel, task labels and target steps): the model's share of the gap."""
    import torch

    from clstm.config import load_config
    from clstm.models import build_model
    from clstm.run.runner import build_benchmark
    from clstm.targets import carried_steps, criterion

    t, cfg = config["train"], load_config(config)
    torch.manual_seed(config["seed"])
    model = build_model(cfg.model, benchmark=build_benchmark(cfg))
    loss_fn, params = criterion("per_step_bits"), list(model.parameters())
    spent = 0.0
    for task, (x, y) in enumerate(train):
        labels = torch.full((len(x),), task)
        started = time.perf_counter()
        optimizer = torch.optim.Adam(params, lr=t["lr"])
        for _ in range(t["epochs"]):
            order = torch.randperm(len(x))
            for i in range(0, len(x), t["batch_size"]):
                index = order[i : i + t["batch_size"]]
                yb = y[index]
                loss = loss_fn(model(x[index], labels[index], steps=carried_steps(yb)), yb)
                update(optimizer, loss, params, t["grad_clip"])
        spent += time.perf_counter() - started
    return spent


def copy_parts(train, config: dict, rounds: int) -> dict:
    """Per-iteration parts of the Copy Task step, microseconds (medians of alternated timings):
    the hand loop's model step and clstm's (forward, loss, backward on one batch of 128), and
    what clstm's loop does per batch that the hand loop does not."""
    import random
    import timeit

    import torch
    from torch import nn

    from clstm.config import load_config
    from clstm.models import build_model
    from clstm.run.runner import build_benchmark
    from clstm.targets import carried_steps, count_correct, criterion

    cfg, b = load_config(config), config["train"]["batch_size"]
    x, y = (v[:b] for v in train[0])
    torch.manual_seed(0)
    model = build_model(cfg.model, benchmark=build_benchmark(cfg))
    rnn, elman = model.encoder.rnn, model.encoder.elman
    head, loss_fn, tasks = model.heads[0], criterion("per_step_bits"), torch.zeros(b, dtype=int)
    cols = carried_steps(y)[0].nonzero().squeeze(1)
    values, targets = x[..., :-1].contiguous(), y[:, cols].contiguous()

    def hand():
        out, _ = rnn(values)
        logits = head(torch.tanh(elman(out[:, cols])))
        (nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / b
         ).backward()  # fmt: skip

    def clstm():
        loss_fn(model(x, tasks, steps=carried_steps(y)), y).backward()

    steps = {"hand": hand, "clstm": clstm}
    times: dict = {k: [] for k in steps}
    for _ in range(rounds):
        for name in random.sample(list(steps), 2):
            t0 = time.perf_counter()
            for _ in range(5):
                steps[name]()
            times[name].append((time.perf_counter() - t0) / 5 * 1e6)
    out = model(x, tasks, steps=carried_steps(y)).detach()
    index = torch.randperm(len(train[0][0]))[:b]
    labels = torch.zeros(len(train[0][0]), dtype=int)
    extra = {
        "scoring the batch for the training curves (count_correct)": lambda: count_correct(
            out, y
        ),
        "the target-step mask (carried_steps)": lambda: carried_steps(y),
        "the task labels' split (torch.unique)": lambda: torch.unique(tasks).tolist(),
        "cutting the task labels with the batch": lambda: labels[index],
    }  # fmt: skip
    parts = {k: min(timeit.repeat(f, number=500, repeat=5)) / 500 * 1e6 for k, f in extra.items()}
    return {
        "hand_us": statistics.median(times["hand"]),
        "clstm_us": statistics.median(times["clstm"]),
        "ratio": statistics.median(
            a / b for a, b in zip(times["clstm"], times["hand"], strict=True)
        ),
        "parts": parts,
    }


def forecast_hand(train, config: dict, clstm_model: bool = False) -> float:
    """The hand-written forecasting loop: LSTM read at the last step, a linear layer, MSE; Adam
    from lr0 with lr0 * exp(-e / E) per epoch and clipping at 1 (clstm's defaults).
    ``clstm_model``: clstm's model instead (handed each batch with its mask channel)."""
    import math

    import torch
    from torch import nn

    t, hidden = config["train"], config["model"]["hidden_size"]
    torch.manual_seed(config["seed"])
    if clstm_model:
        from clstm.config import load_config
        from clstm.models import build_model
        from clstm.run.runner import build_benchmark

        cfg = load_config(config)
        model = build_model(cfg.model, benchmark=build_benchmark(cfg))
        params = list(model.parameters())
    else:
        lstm = nn.LSTM(train[0][0].shape[-1] - 1, hidden, batch_first=True)
        head = nn.Linear(hidden, train[0][1].shape[-1])
        params = [*lstm.parameters(), *head.parameters()]

        def model(x):
            return head(lstm(x)[0][:, -1])

    spent = 0.0
    for x, y in train:
        assert bool(x[:, -1, -1].all()), "forecast windows are of one length"
        values = x if clstm_model else x[..., :-1].contiguous()
        started = time.perf_counter()
        optimizer = torch.optim.Adam(params, lr=t["lr"])
        decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: math.exp(-e / t["epochs"]))
        for _ in range(t["epochs"]):
            order = torch.randperm(len(x))
            for i in range(0, len(x), t["batch_size"]):
                index = order[i : i + t["batch_size"]]
                loss = nn.functional.mse_loss(model(values[index]), y[index])
                update(optimizer, loss, params, 1.0)
            decay.step()
        spent += time.perf_counter() - started
    return spent


def alternate(contenders: dict, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(contenders[name]())
            print(f"  repeat {r + 1}: {name}: {times[name][-1]:.2f} s", flush=True)
    return times


def ratios(base: list[float], times: list[float]) -> tuple[float, float, float]:
    r = sorted(b / a for a, b in zip(base, times, strict=True))
    q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
    return statistics.median(r), q[0], q[2]


def step_flops(config: dict, train) -> float:
    """Floating-point operations of one Copy Task training iteration (batch B): the forward
    pass's multiply-adds x 2, and the backward pass's twice the forward's (the gradients of
    the inputs and of the weights)."""
    from clstm.targets import carried_steps

    x, y = train[0]
    b, steps, features = config["train"]["batch_size"], x.shape[1], x.shape[-1] - 1
    h, w = config["model"]["hidden_size"], y.shape[-1]
    n = int(carried_steps(y[:1]).sum())
    forward = 2 * b * (steps * (features * h + h * h) + n * (h * h + h * w))
    return 3.0 * forward


def matmul_peak(shape: tuple[int, int, int], seconds: float = 1.0) -> float:
    """GFLOP/s of ``(m, k) @ (k, n)`` sgemm on this thread, the best of repeated timings."""
    import torch

    m, k, n = shape
    a, b = torch.randn(m, k), torch.randn(k, n)
    best, deadline = float("inf"), time.perf_counter() + seconds
    reps = max(1, int(2e8 / (2 * m * k * n)))
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * m * k * n / best / 1e9


def long_run(config: dict, per_iteration: float, quick: bool) -> dict:
    """The full protocol's fixed costs: building the data, and per experience the evaluation
    and the checkpoint (one experience of a short run with the full test sets, checkpoint on)."""
    import clstm.run.checkpoint as protocol
    from clstm.config import load_config
    from clstm.run.runner import build_benchmark

    full = experiment("ehret2021_permuted_copy")
    if quick:
        full["benchmark"].update(n_train=2000)
    t0 = time.perf_counter()
    build_benchmark(load_config(full))
    data_s = time.perf_counter() - t0
    short = experiment("ehret2021_permuted_copy", train={"epochs": 1}, benchmark={"n_train": 256})
    short["checkpoint"] = "keep"  # written after every experience
    saved, spent = protocol.save_strategy, []

    def timed_save(*args, **kwargs):
        t = time.perf_counter()
        saved(*args, **kwargs)
        spent.append(time.perf_counter() - t)

    protocol.save_strategy = timed_save
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _, meta = clstm_seconds(short, Path(tmp))
    finally:
        protocol.save_strategy = saved
    n_exp, cfg = full["benchmark"]["n_experiences"], load_config(full)
    iterations = cfg.train.epochs * -(-cfg.benchmark.n_train // cfg.train.batch_size)
    train_s = iterations * per_iteration
    return {
        "iterations": iterations, "train_s": train_s, "data_s": data_s / n_exp,
        "eval_s": statistics.median(t["eval_s"] for t in meta["timings"]),
        "checkpoint_s": statistics.median(spent), "n_experiences": n_exp,
    }  # fmt: skip


def measure(repeats: int, quick: bool) -> dict:
    import torch

    torch.set_num_threads(1)
    n_train = 512 if quick else 12_800
    copy = experiment(
        "ehret2021_permuted_copy",
        benchmark={"n_experiences": 2, "n_train": n_train, "n_test": 1000},
        train={"epochs": 2},
    )
    forecast = experiment("forecast_regimes", train={"epochs": 2} if quick else {})
    data: dict = {"copy_config": copy, "forecast_config": forecast}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clstm_seconds(copy, tmp / "warm")  # imports, first-time allocations
        copy_train = streams(copy)
        print("Copy Task", flush=True)
        data["copy"] = alternate({
            "hand": lambda: copy_hand(copy_train, copy),
            "clstm": lambda: clstm_seconds(copy, tmp / "copy")[0],
            "hand, clstm's model": lambda: copy_hand_clstm_model(copy_train, copy),
            "every step": lambda: every_step(copy, tmp / "every"),
        }, repeats)  # fmt: skip
        forecast_train = streams(forecast)
        print("forecasting", flush=True)
        data["forecast"] = alternate({
            "hand": lambda: forecast_hand(forecast_train, forecast),
            "clstm": lambda: clstm_seconds(forecast, tmp / "forecast")[0],
            "hand, clstm's model": lambda: forecast_hand(forecast_train, forecast, True),
        }, repeats)  # fmt: skip
        iterations = (
            copy["benchmark"]["n_experiences"]
            * copy["train"]["epochs"]
            * -(-copy["benchmark"]["n_train"] // copy["train"]["batch_size"])
        )
        data["copy_iterations"] = iterations
        data["parts"] = copy_parts(copy_train, copy, 12 if quick else 60)
        data["flops"] = step_flops(copy, copy_train)
    b, h = copy["train"]["batch_size"], copy["model"]["hidden_size"]
    data["peak"] = matmul_peak((2048, 2048, 2048))
    data["step_gemm"] = matmul_peak((b, h, h))
    per_iteration = statistics.median(data["copy"]["clstm"]) / data["copy_iterations"]
    data["long"] = long_run(copy, per_iteration, quick)
    return data


def section(data: dict, machine: str, repeats: int) -> str:
    copy, fc = data["copy"], data["forecast"]
    med = {k: statistics.median(v) for k, v in copy.items()}
    c, e = ratios(copy["hand"], copy["clstm"]), ratios(copy["hand"], copy["every step"])
    hm, parts = "hand, clstm's model", data["parts"]
    m, lp = ratios(copy["hand"], copy[hm]), ratios(copy[hm], copy["clstm"])
    f = ratios(fc["hand"], fc["clstm"])
    fm, fl = ratios(fc["hand"], fc[hm]), ratios(fc[hm], fc["clstm"])
    fmed = {k: statistics.median(v) for k, v in fc.items()}
    cb = data["copy_config"]["benchmark"]
    per_iteration = med["clstm"] / data["copy_iterations"]
    achieved = data["flops"] / per_iteration / 1e9
    hand_achieved = data["flops"] / (med["hand"] / data["copy_iterations"]) / 1e9
    lr = data["long"]
    run_s = lr["train_s"] + lr["eval_s"] + lr["checkpoint_s"] + lr["data_s"]

    def share(seconds: float) -> str:
        p = 100 * seconds / run_s
        return f"{seconds:.2f} s | {p:.2f}% | {'met' if p <= 1 else 'NOT met'}"

    def verdict(r: float) -> str:
        return "met" if r <= 1.05 else "NOT met"

    return "\n".join([
        START,
        "## 9. Hand-loop speed on the per-step and regression paths",
        "",
        f"Generated by `python experiments/bench_paths.py` on {time.strftime('%Y-%m-%d')}, "
        f"{machine}, one torch thread, {repeats} alternating rounds. Training time in seconds "
        "(medians); each ratio is the median (quartiles) of paired runs against the hand-written "
        "loop on the same tensors. Another CPU model gives other times and slightly other "
        "numbers for the same seed.",
        "",
        f"**Copy Task** (experiments/ehret2021_permuted_copy.yaml: vanilla RNN 256 + Elman "
        f"output layer, one head per task, Adam, clipping 1, batch 128), {cb['n_experiences']} "
        f"tasks x {data['copy_config']['train']['epochs']} epochs x {cb['n_train']:,} "
        "sequences. The hand loop applies the output layer and the task's head at the 5 target "
        "steps of 11 only; clstm does so since issue 40 (outputs at the target steps alone, "
        "docs/performance.md); \"every step\" is clstm computing them at all 11 steps, as "
        "before.",
        "",
        "| contender | median s | × hand-written (paired median, quartiles) | target ≤ 1.05× |",
        "|---|---|---|---|",
        f"| hand-written loop | {med['hand']:.2f} | 1.00 | |",
        f"| clstm | {med['clstm']:.2f} | **{c[0]:.3f}×** ({c[1]:.3f}–{c[2]:.3f}) | "
        f"{verdict(c[0])} |",
        f"| clstm, every step's output (before) | {med['every step']:.2f} | {e[0]:.3f}× "
        f"({e[1]:.3f}–{e[2]:.3f}) | |",
        f"| hand-written loop, clstm's model and loss | {med[hm]:.2f} | {m[0]:.3f}× "
        f"({m[1]:.3f}–{m[2]:.3f}) | |",
        "",
        f"Where clstm's {c[0]:.3f}× goes: the same hand-written loop with clstm's model and loss "
        f"takes {m[0]:.3f}× (the model's share), and clstm takes {lp[0]:.3f}× that loop "
        f"({lp[1]:.3f}–{lp[2]:.3f}; the loop's share). Measured apart (medians of alternated "
        f"timings on one batch of {data['copy_config']['train']['batch_size']}): the model's "
        f"forward, loss and backward take {parts['clstm_us']:.0f} µs against the hand "
        f"model's {parts['hand_us']:.0f} µs (paired {parts['ratio']:.3f}×; clstm's model "
        "reads the mask channel, splits the batch by task and puts the outputs of the target "
        "steps back in place, zeros elsewhere, for the loss, the scores and the plugins); per "
        "batch clstm also spends "
        + "; ".join(f"{k} {v:.0f} µs" for k, v in parts["parts"].items())
        + f", against {per_iteration * 1e6:,.0f} µs per iteration.",
        "",
        "**Forecasting** (experiments/forecast_regimes.yaml: LSTM 64, "
        f"{data['forecast_config']['train']['epochs']} epochs, batch "
        f"{data['forecast_config']['train']['batch_size']}, the four regimes):",
        "",
        "| contender | median s | × hand-written (paired median, quartiles) | target ≤ 1.05× |",
        "|---|---|---|---|",
        f"| hand-written loop | {fmed['hand']:.2f} | 1.00 | |",
        f"| clstm | {fmed['clstm']:.2f} | **{f[0]:.3f}×** ({f[1]:.3f}–{f[2]:.3f}) | "
        f"{verdict(f[0])} |",
        f"| hand-written loop, clstm's model | {fmed[hm]:.2f} | {fm[0]:.3f}× "
        f"({fm[1]:.3f}–{fm[2]:.3f}) | |",
        "",
        f"The model's share: {fm[0]:.3f}× (the hand loop with clstm's model, which reads the "
        f"mask channel); the loop's: clstm takes {fl[0]:.3f}× ({fl[1]:.3f}–{fl[2]:.3f}) that "
        "loop. The errors are summed on the device in evaluation, and training reads no value "
        "per batch but the divergence check's loss (a float read, free on a CPU; on a GPU it is "
        "accumulated on the device and read every 32 iterations).",
        "",
        f"**The hardware's limit.** One Copy Task iteration is {data['flops'] / 1e6:.0f} MFLOP "
        "(the forward pass's multiply-adds x 2, the backward pass counted as twice the "
        f"forward). clstm runs it at **{achieved:.1f} GFLOP/s** ({per_iteration * 1e3:.2f} ms "
        f"per iteration), the hand loop at {hand_achieved:.1f} GFLOP/s. One core's measured "
        f"sgemm peak (2048 x 2048 x 2048) is {data['peak']:.1f} GFLOP/s, the sgemm of the "
        f"step's own shape (128 x 256 by 256 x 256) {data['step_gemm']:.1f} GFLOP/s: clstm "
        f"reaches {100 * achieved / data['peak']:.0f}% of the peak and "
        f"{100 * achieved / data['step_gemm']:.0f}% of what its largest matmuls attain. The "
        "rest is the recurrence's step-by-step work (11 dependent steps of small matmuls, tanh, "
        "their backward) and the optimizer.",
        "",
        f"**A long run's fixed costs** (the full protocol: {lr['n_experiences']} tasks x "
        f"100,000 sequences, {lr['iterations']:,} iterations per task, at the measured "
        f"{per_iteration * 1e3:.2f} ms per iteration: {lr['train_s']:.0f} s of training per "
        "experience; each part per experience, as a share of the experience's whole time):",
        "",
        "| part | per experience | share | target ≤ 1% |",
        "|---|---|---|---|",
        f"| generating the data (all tasks' / {lr['n_experiences']}) | {share(lr['data_s'])} |",
        f"| evaluation (5 test sets x 1,000 sequences) | {share(lr['eval_s'])} |",
        f"| checkpoint | {share(lr['checkpoint_s'])} |",
        END,
    ])  # fmt: skip


def main() -> None:
    section_main(__doc__, measure, section, START, END)


if __name__ == "__main__":
    main()
