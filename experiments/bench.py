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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench_render import (  # beside this script (its directory is on sys.path when run)
    FLUSHED,
    OVERHEAD,
    SAME_MODEL,
    SECTIONS,
    USUAL,
    median,
    render,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    """One benchmark workload (the synthetic benchmark: each experience a different rule)."""

    n_experiences: int = 3
    n_train: int = 2000
    n_test: int = 500
    seq_len: int | tuple[int, int] = 30
    n_features: int = 8
    n_classes: int = 4
    hidden: int = 64
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 512
    lr: float = 0.003
    seed: int = 0
    grad_clip: float | None = 1.0  # on both sides: clstm's train.grad_clip and the hand loop's

    def config(self, **top) -> dict:
        """The clstm config dict for this workload."""
        seq = list(self.seq_len) if isinstance(self.seq_len, tuple) else self.seq_len
        return {
            "name": "bench",
            "seed": self.seed,
            "device": "cpu",
            "benchmark": {
                "name": "synthetic",
                "n_experiences": self.n_experiences,
                "n_train": self.n_train,
                "n_test": self.n_test,
                "seq_len": seq,
                "n_features": self.n_features,
                "n_classes": self.n_classes,
            },
            "model": {"type": "lstm", "hidden_size": self.hidden},
            "strategy": {"name": "naive"},
            "train": {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "lr_schedule": "exponential",
                "grad_clip": self.grad_clip,
            },
            "eval": {"batch_size": self.eval_batch_size},
            "checkpoint": "off",
            **top,
        }

    def describe(self) -> str:
        lengths = (
            f"{self.seq_len[0]}..{self.seq_len[1]}"
            if isinstance(self.seq_len, tuple)
            else str(self.seq_len)
        )
        return (
            f"{self.n_experiences} experiences x {self.n_train} train / {self.n_test} test "
            f"sequences, length {lengths}, {self.n_features} features, {self.n_classes} classes; "
            f"LSTM hidden {self.hidden}; {self.epochs} epochs, batch {self.batch_size}, "
            f"eval batch {self.eval_batch_size}; gradient clipping "
            + (f"at norm {self.grad_clip:g}" if self.grad_clip else "off")
            + " on both sides"
        )


# the small model: LSTM 32, 30 steps (2 features: the synthetic benchmark needs
# n_classes <= n_features), 3 datasets x 3000 sequences, 5 epochs
TINY = dict(n_train=3000, seq_len=30, n_features=2, n_classes=2, hidden=32, epochs=5)
FULL = {
    "tiny": Setting(**TINY),
    "tiny_noclip": Setting(**TINY, grad_clip=None),
    "small": Setting(),
    "large": Setting(n_train=1000, seq_len=100, hidden=128, epochs=4),
    "varlen": Setting(n_train=1000, n_test=300, seq_len=(8, 256), n_classes=2, epochs=8),
    "eval": Setting(n_experiences=10, seq_len=(10, 30)),  # the quickstart's, 10 experiences
    "replay": Setting(n_experiences=10, n_train=1000, n_test=200, seq_len=(10, 30), epochs=2),
}
QUICK = {
    "tiny": Setting(**{**TINY, "n_train": 64, "n_test": 32, "epochs": 1}),
    "tiny_noclip": Setting(**{**TINY, "n_train": 64, "n_test": 32, "epochs": 1}, grad_clip=None),
    "small": Setting(n_train=64, n_test=32, seq_len=10, epochs=1),
    "large": Setting(n_train=64, n_test=32, seq_len=20, hidden=128, epochs=1),
    "varlen": Setting(n_train=64, n_test=32, seq_len=(8, 64), n_classes=2, epochs=1),
    "eval": Setting(n_experiences=10, n_train=64, n_test=32, seq_len=(10, 30), epochs=1),
    "replay": Setting(n_experiences=10, n_train=64, n_test=32, seq_len=(10, 30), epochs=1),
}
REPLAY_MEM = 500


# --------------------------------------------------------------------------- shared helpers


def build_benchmark(setting: Setting):
    from clstm.config import load_config
    from clstm.data.registry import benchmark_module

    cfg = load_config(setting.config())
    return benchmark_module("synthetic").build(cfg.benchmark)


def stream_tensors(stream):
    """``[(x (N, T, F + 1), y (N,)), ...]`` per experience, read once through a data loader."""
    import torch

    out = []
    for exp in stream:
        xs, ys = [], []
        for x, y, *_ in torch.utils.data.DataLoader(exp.dataset, batch_size=4096):
            xs.append(x)
            ys.append(y)
        out.append((torch.cat(xs), torch.cat(ys)))
    return out


def front_padded(x):
    """Right-padded ``(N, T, F + 1)`` -> features ``(N, T, F)`` moved to the end of each row."""
    import torch

    values, mask = x[..., :-1], x[..., -1]
    lengths = mask.sum(1).round().long()
    out = torch.zeros_like(values)
    for i, n in enumerate(lengths.tolist()):
        out[i, x.shape[1] - n :] = values[i, :n]
    return out


# --------------------------------------------------------------------------- contenders


def hand_loop(train, test, setting: Setting, make_model=None) -> list[list[float]]:
    """The loop a researcher writes: one LSTM over the datasets in turn, all evaluated after each.

    ``train``/``test``: per dataset ``(X (N, T, F), y)``, each row's prediction read at step -1.
    Adam, reset at every dataset with its LR decayed per epoch as lr0 * exp(-e / E), gradient
    norm clipped to 1: what clstm's defaults do. Returns the accuracy-matrix rows (initial first).
    ``make_model``: another model than :func:`hand_model` (built after seeding), e.g. clstm's,
    handed ``X`` with its mask channel.
    """
    import torch

    torch.manual_seed(setting.seed)
    model = hand_model(setting) if make_model is None else make_model()

    def evaluate() -> list[float]:
        model.eval()
        accuracies = []
        with torch.inference_mode():
            for x, y in test:
                correct = 0
                for i in range(0, len(y), setting.eval_batch_size):
                    logits = model(x[i : i + setting.eval_batch_size])
                    correct += int((logits.argmax(1) == y[i : i + setting.eval_batch_size]).sum())
                accuracies.append(correct / len(y))
        model.train()
        return accuracies

    rows = [evaluate()]
    for x, y in train:
        hand_train(model, x, y, setting.lr, setting.epochs, setting.batch_size, setting.grad_clip)
        rows.append(evaluate())
    return rows


def hand_model(setting: Setting):
    """The hand-written loop's model: an LSTM read at the last step (fixed lengths), a linear
    head."""
    from torch import nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(setting.n_features, setting.hidden, batch_first=True)
            self.fc = nn.Linear(setting.hidden, setting.n_classes)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[:, -1])

    return LSTMClassifier()


def clstm_model(bench, setting: Setting):
    """The model clstm builds for ``setting`` (it reads each sequence's length from the mask)."""
    from clstm.config import load_config
    from clstm.models import build_model

    return build_model(load_config(setting.config()).model, benchmark=bench)


def hand_train(
    model, x, y, lr: float, epochs: int, batch_size: int, clip: float | None = 1.0
) -> None:
    """One dataset, hand-written: Adam from lr0, LR lr0 * exp(-e / E) per epoch, the gradient
    norm clipped to ``clip`` (None: not clipped)."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: math.exp(-e / epochs))
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), batch_size):
            index = order[i : i + batch_size]
            loss = loss_fn(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        schedule.step()


def clstm_run(bench, setting: Setting, plugins=(), overrides=(), **top) -> list[list[float]]:
    """``clstm.run_experiment`` as a user runs it (run directory, TensorBoard, metrics files)."""
    from clstm.runner import run_experiment

    with tempfile.TemporaryDirectory() as out:
        result = run_experiment(
            setting.config(**top), benchmark=bench, out=out, overrides=overrides, quiet=True,
            plugins=plugins,
        )  # fmt: skip
    initial = result.initial_accuracy
    return ([initial.tolist()] if initial is not None else []) + result.accuracy_matrix.tolist()


def avalanche_naive(bench, setting: Setting) -> list[list[float]]:
    """Plain Avalanche ``Naive`` with its default evaluator (and its console logger), same model."""
    import torch
    from avalanche.training import Naive

    from clstm.config import load_config
    from clstm.models import build_model

    torch.manual_seed(setting.seed)
    cfg = load_config(setting.config())
    model = build_model(cfg.model, benchmark=bench)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=setting.lr),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=setting.batch_size,
        train_epochs=setting.epochs,
        eval_mb_size=setting.eval_batch_size,
        device="cpu",
    )
    rows = []
    with silenced_output():
        scenario = bench.scenario
        results = strategy.eval(scenario.test_stream)
        rows.append(_avalanche_row(results, bench.n_experiences))
        for exp in scenario.train_stream:
            strategy.train(exp)
            results = strategy.eval(scenario.test_stream)
            rows.append(_avalanche_row(results, bench.n_experiences))
    return rows


def _avalanche_row(results: dict, n: int) -> list[float]:
    prefix = "Top1_Acc_Exp/eval_phase/test_stream/"
    by_exp = {k[-3:]: v for k, v in results.items() if k.startswith(prefix)}
    return [float(by_exp[f"{i:03d}"]) for i in range(n)]


@contextlib.contextmanager
def silenced_output():
    """Send file descriptors 1 and 2 to /dev/null (Avalanche's console logger holds sys.stdout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


def alternate(contenders: dict, repeats: int, log) -> dict[str, dict]:
    """Run every contender ``repeats`` times, rotating the order; times and results.

    Each contender is called with the repetition's index.
    """
    names = list(contenders)
    out = {name: {"times": [], "rows": None} for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            seconds, rows = timed(contenders[name], r)
            out[name]["times"].append(seconds)
            out[name]["rows"] = rows
            out[name].setdefault("all_rows", []).append(rows)
            log(f"  repeat {r + 1}: {name}: {seconds:.2f} s")
    return out


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


def model_and_stacking_apart(setting: Setting, repeats: int, log) -> dict:
    """What the small model's two loops do differently, each measured alone.

    The models: microseconds per training batch (forward, loss, backward; no optimizer) of the
    hand-written model on the features and of clstm's model on the padded batch with its mask
    channel, alternated batch by batch (``repeats`` x 40 rounds of 5 batches each). Stacking:
    milliseconds to stack one training experience's samples, as clstm does before training on
    it (whole tensors) and as per-sample reads through Avalanche's dataset layers would.
    """
    import torch

    from clstm.data.batches import stacked

    bench = build_benchmark(setting)
    experience = bench.scenario.train_stream[0]
    x, y = stream_tensors([experience])[0]
    torch.manual_seed(setting.seed)
    models = {
        "hand-written model": (hand_model(setting), x[..., :-1]),
        "clstm's model": (clstm_model(bench, setting), x),
    }
    loss_fn = torch.nn.CrossEntropyLoss()
    order = torch.randperm(len(y))[: setting.batch_size]
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats * 40):
        for name, (model, inputs) in models.items():
            batch, target = inputs[order], y[order]
            started = time.perf_counter()
            for _ in range(5):
                loss_fn(model(batch), target).backward()
            times[name].append(1e6 * (time.perf_counter() - started) / 5)
    stacking: dict[str, list[float]] = {"whole tensors": [], "per-sample reads": []}
    for _ in range(repeats):
        for name, direct in (("whole tensors", True), ("per-sample reads", False)):
            dataset = experience.dataset.train()  # a fresh view, as each training call gets
            started = time.perf_counter()
            stacked(dataset, direct_reads=direct)
            stacking[name].append(1000 * (time.perf_counter() - started))
    log(f"model and stacking apart: {setting.describe()}")
    return {
        "us_per_batch": times, "ms_stacking": stacking, "n_samples": len(y),
        "batch_size": setting.batch_size, "epochs": setting.epochs,
        "n_experiences": setting.n_experiences,
    }  # fmt: skip


def profile_iteration(setting: Setting, log, top: int = 14) -> dict:
    """cProfile of clstm's training (with its training metrics) on the linear model of
    :func:`fixed_cost_per_iteration`, 6 epochs of one experience: the functions with the most
    own time, in microseconds per training iteration (profiling inflates every Python call
    about twice; the ranking is what matters)."""
    import cProfile
    import pstats

    import torch

    from clstm.config import load_config
    from clstm.plugins import AccuracyMatrixMetric
    from clstm.plugins.evaluation import LeanEvaluationPlugin
    from clstm.plugins.training_curves import TrainingCurvesMetric
    from clstm.strategies import build_strategy

    bench = build_benchmark(setting)
    experience = bench.scenario.train_stream[0]
    x, y = stream_tensors([experience])[0]
    epochs = 6
    iterations = epochs * math.ceil(len(y) / setting.batch_size)
    cfg = load_config(setting.config(train={"epochs": epochs, "batch_size": setting.batch_size,
                                            "lr": setting.lr}))  # fmt: skip

    def FirstStep():  # noqa: N802 - reads as the model class it makes
        return first_step_model(x.shape[-1], setting.n_classes)

    evaluator = LeanEvaluationPlugin(TrainingCurvesMetric(), AccuracyMatrixMetric(), loggers=[])
    strategy = build_strategy(cfg, model=FirstStep(), device=torch.device("cpu"),
                              evaluator=evaluator)  # fmt: skip
    profiler = cProfile.Profile()
    with silenced_output():
        profiler.enable()
        strategy.train(experience)
        profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = []
    for (path, line, name), (_, calls, own, cumulative, _) in stats.items():
        where = path.split("site-packages/")[-1].removeprefix(f"{ROOT}/")
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls": calls,
                "own_us": 1e6 * own / iterations,
                "cum_us": 1e6 * cumulative / iterations,
            }
        )
    rows.sort(key=lambda r: -r["own_us"])
    total = sum(r["own_us"] for r in rows)
    log(f"profile: {iterations} iterations")
    return {"iterations": iterations, "total_us": total, "rows": rows[:top]}


@contextlib.contextmanager
def previous_iteration():
    """clstm's training iteration as it was before issue 15 (for the before/after table):
    Avalanche's own epoch loops (every callback offered to every plugin), batches through a
    ``DataLoader`` with index lists, Avalanche's evaluator dispatch (a logging view of the
    experience and every metric and logger offered each callback) and a divergence check
    through ``torch.isfinite``."""
    import torch
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.templates.base_sgd import BaseSGDTemplate
    from avalanche.training.templates.update_type.sgd_update import SGDUpdate
    from torch.utils.data import DataLoader

    import clstm.plugins.bucketing as bucketing
    from clstm.data import batches as batches_module
    from clstm.lean import LeanIteration
    from clstm.plugins.divergence import DivergenceGuard, RunDiverged
    from clstm.plugins.evaluation import LeanEvaluationPlugin

    def loader(dataset, batch_sampler, *, pin_memory):
        stacked = batches_module.stacked(dataset)
        return DataLoader(stacked, sampler=batch_sampler, batch_size=None, pin_memory=pin_memory)

    def update(self, strategy, callback):
        if not self.listens(callback):
            return []
        return EvaluationPlugin._update_metrics_and_loggers(self, strategy, callback)

    def before_backward(self, strategy, **kwargs):
        if not bool(torch.isfinite(strategy.loss).all()):
            raise RunDiverged("non-finite loss")

    patches = [
        (LeanIteration, "training_epoch", SGDUpdate.training_epoch),
        (LeanIteration, "eval_epoch", BaseSGDTemplate.eval_epoch),
        (bucketing, "loader", loader),
        (LeanEvaluationPlugin, "_update_metrics_and_loggers", update),
        (DivergenceGuard, "before_backward", before_backward),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def first_step_model(n_inputs: int, n_classes: int):
    """A linear layer on each sequence's first step: a model that costs almost nothing, so a
    training loop's own cost is what is measured."""
    from torch import nn

    class FirstStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(n_inputs, n_classes)

        def forward(self, batch):
            return self.fc(batch[:, 0])

    return FirstStep()


def fixed_cost_per_iteration(setting: Setting, repeats: int, log) -> dict:
    """Milliseconds per training iteration when the model costs almost nothing, and per
    training call (one experience).

    The model is a linear layer on each sequence's first step, so what is left is the loop's
    own cost: loading the batch, Adam, clipping, and whatever machinery surrounds them. Each
    contender trains one experience of ``setting`` for 1 and for 6 epochs; the cost per
    iteration is the slope between the two (so a cost paid once per experience - stacking the
    samples, building loaders - does not count as per-iteration), the cost per training call
    the intercept.
    """
    import torch
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin
    from torch import nn

    from clstm.config import load_config
    from clstm.plugins import AccuracyMatrixMetric
    from clstm.plugins.evaluation import LeanEvaluationPlugin
    from clstm.plugins.training_curves import TrainingCurvesMetric
    from clstm.strategies import build_strategy

    bench = build_benchmark(setting)
    experience = bench.scenario.train_stream[0]
    x, y = stream_tensors([experience])[0]
    per_epoch = math.ceil(len(y) / setting.batch_size)
    short, long = 1, 6

    def FirstStep():  # noqa: N802 - reads as the model class it makes
        return first_step_model(x.shape[-1], setting.n_classes)

    def hand(epochs):
        hand_train(FirstStep(), x, y, setting.lr, epochs, setting.batch_size)

    def avalanche(epochs):
        model = FirstStep()
        Naive(
            model=model, optimizer=torch.optim.Adam(model.parameters(), lr=setting.lr),
            criterion=nn.CrossEntropyLoss(), train_mb_size=setting.batch_size,
            train_epochs=epochs, device="cpu", evaluator=EvaluationPlugin(loggers=[]),
        ).train(experience)  # fmt: skip

    def clstm(metrics: bool, previous: bool = False):
        def run(epochs):
            cfg = load_config(setting.config(train={
                "epochs": epochs, "batch_size": setting.batch_size, "lr": setting.lr}))  # fmt: skip
            chosen = [TrainingCurvesMetric(), AccuracyMatrixMetric()] if metrics else []
            evaluator = LeanEvaluationPlugin(*chosen, loggers=[])
            strategy = build_strategy(
                cfg, model=FirstStep(), device=torch.device("cpu"), evaluator=evaluator
            )
            with previous_iteration() if previous else contextlib.nullcontext():
                strategy.train(experience)

        return run

    contenders = {
        "hand-written loop (Adam, clipping, LR schedule)": hand,
        "Avalanche Naive, no plugins, no metrics": avalanche,
        "clstm before (Avalanche's loops, DataLoader, Avalanche's evaluator dispatch), with its "
        "training metrics": clstm(True, previous=True),
        "clstm's strategy (LSTM plugin, divergence guard, loaders), no metrics": clstm(False),
        "clstm's strategy with its training metrics": clstm(True),
    }
    log(f"fixed cost per iteration: {per_epoch} iterations per epoch, {short} and {long} epochs")
    with silenced_output():  # Avalanche warns that an evaluator without loggers logs nothing
        results = alternate(
            {
                f"{name}|{epochs}": (lambda r, f=f, e=epochs: f(e))
                for name, f in contenders.items()
                for epochs in (short, long)
            },
            repeats,
            lambda message: None,
        )
    out = {}
    for name in contenders:
        a, b = (results[f"{name}|{e}"]["times"] for e in (short, long))
        slopes = [(tb - ta) / ((long - short) * per_epoch) for ta, tb in zip(a, b, strict=True)]
        intercepts = [ta - s * short * per_epoch for ta, s in zip(a, slopes, strict=True)]
        out[name] = {"ms_per_iteration": [1000 * v for v in slopes],
                     "ms_per_call": [1000 * v for v in intercepts]}  # fmt: skip
    return out | {"n_iterations": per_epoch, "epochs": [short, long]}


def fixed_cost_per_run(repeats: int, log) -> dict:
    """What a run costs beyond training and evaluating: milliseconds of each part of
    ``clstm.run_experiment`` on a tiny workload (3 experiences of 64 sequences, 1 epoch), timed
    by wrapping the functions that do it, median over ``repeats`` runs; with checkpoints off
    and on (the default, ``keep``)."""
    import importlib

    from clstm.runner import run_experiment

    setting = Setting(n_train=64, n_test=32, seq_len=10, epochs=1)
    bench = build_benchmark(setting)
    parts = {
        "TensorBoard writer (TensorboardLogger)": (
            "avalanche.logging.tensorboard_logger", "TensorboardLogger.__init__"),
        "accuracy-matrix heatmap images": ("clstm.plugins.accuracy_matrix",
                                           "AccuracyMatrixMetric.heatmap"),
        "HParams": ("clstm.outcome", "write_hparams"),
        "checkpoints (save_strategy)": ("clstm.checkpoint", "save_strategy"),
        "provenance (git state, versions)": ("clstm.provenance", "provenance"),
        "TensorBoard view file": ("clstm.runner", "_update_tensorboard_view"),
        "JSON files (meta.json, metrics.json)": ("clstm.runner", "write_json_atomic"),
        "text files (config.yaml, CSV)": ("clstm.runner", "write_text_atomic"),
        "building model and strategy": ("clstm.strategies", "build_strategy"),
        "training (strategy.train)": ("avalanche.training.templates.base", "BaseTemplate.train"),
        "evaluation (strategy.eval)": ("avalanche.training.templates.base", "BaseTemplate.eval"),
    }  # fmt: skip
    spent: dict[str, float] = {}
    saved = []

    def wrap(label, module, attr):
        owner = importlib.import_module(module)
        *path, last = attr.split(".")
        for p in path:
            owner = getattr(owner, p)
        original = owner.__dict__[last] if last in owner.__dict__ else getattr(owner, last)
        depth = [0]

        def timed_part(*args, **kwargs):
            depth[0] += 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    spent[label] = spent.get(label, 0.0) + time.perf_counter() - started

        saved.append((owner, last, original))
        setattr(owner, last, timed_part)

    out = {}
    try:
        for label, (module, attr) in parts.items():
            wrap(label, module, attr)
        # meta.json is also written during the run, by the protocol loop
        wrap("JSON files (meta.json, metrics.json)", "clstm.protocol", "write_json_atomic")
        for checkpoint in ("off", "keep"):
            runs = []
            for _ in range(repeats):
                spent.clear()
                with tempfile.TemporaryDirectory() as folder:
                    started = time.perf_counter()
                    run_experiment(setting.config(checkpoint=checkpoint), benchmark=bench,
                                   out=folder, quiet=True)  # fmt: skip
                    total = time.perf_counter() - started
                runs.append({"run": total, **spent})
            out[checkpoint] = {k: [1000 * r.get(k, 0.0) for r in runs] for k in ["run", *parts]}
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    log(f"fixed cost per run: {setting.describe()}")
    return out | {"setting": setting.describe()}


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
    from clstm.runner import run_experiment

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

    import clstm.runner  # noqa: F401

    sizes = QUICK if quick else FULL
    report: dict = {"kind": kind, "rss_after_import_mb": current_rss_mb()}
    if kind == "import":
        pass
    elif kind == "quickstart":
        from clstm.runner import run_experiment

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

    from clstm.runner import quiet_library_warnings

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
