"""The training-loop overhead section's detailed tables (issue 15): what the small model's two
loops do differently, the fixed cost per training iteration and per run, and a profile of
clstm's iteration. Called by ``bench.py``'s overhead section."""

from __future__ import annotations

import contextlib
import math
import tempfile
import time

from bench_common import (  # beside this script (its directory is on sys.path when run)
    ROOT,
    Setting,
    build_benchmark,
    clstm_model,
    hand_model,
    hand_train,
    silenced_output,
    stream_tensors,
)


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
    from clstm.plugins.divergence import DivergenceGuard, RunDiverged
    from clstm.plugins.evaluation import LeanEvaluationPlugin
    from clstm.strategies.lean import LeanIteration

    def loader(dataset, batch_sampler, *, pin_memory):
        stacked = batches_module.stacked(dataset)
        return DataLoader(stacked, sampler=batch_sampler, batch_size=None, pin_memory=pin_memory)

    def update(self, strategy, callback):
        if not self.listens(callback):
            return []
        return EvaluationPlugin._update_metrics_and_loggers(self, strategy, callback)

    def after_backward(self, strategy, **kwargs):  # the guard's check, through torch.isfinite
        if not bool(torch.isfinite(strategy.loss).all()):
            raise RunDiverged("non-finite loss")

    patches = [
        (LeanIteration, "training_epoch", SGDUpdate.training_epoch),
        (LeanIteration, "eval_epoch", BaseSGDTemplate.eval_epoch),
        (bucketing, "loader", loader),
        (LeanEvaluationPlugin, "_update_metrics_and_loggers", update),
        (DivergenceGuard, "after_backward", after_backward),
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
    the intercept. Only the training call is timed: the model, optimizer and strategy are
    built before it (a run builds them once; that is in the run's fixed cost).
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

    # each contender: epochs -> the training call, made ready untimed (a run builds its
    # strategy once, not per experience: that cost is in the run's fixed cost)
    def hand(epochs):
        model = FirstStep()
        return lambda: hand_train(model, x, y, setting.lr, epochs, setting.batch_size)

    def avalanche(epochs):
        model = FirstStep()
        strategy = Naive(
            model=model, optimizer=torch.optim.Adam(model.parameters(), lr=setting.lr),
            criterion=nn.CrossEntropyLoss(), train_mb_size=setting.batch_size,
            train_epochs=epochs, device="cpu", evaluator=EvaluationPlugin(loggers=[]),
        )  # fmt: skip
        return lambda: strategy.train(experience)

    def clstm(metrics: bool, previous: bool = False):
        def ready(epochs):
            cfg = load_config(setting.config(train={
                "epochs": epochs, "batch_size": setting.batch_size, "lr": setting.lr}))  # fmt: skip
            chosen = [TrainingCurvesMetric(), AccuracyMatrixMetric()] if metrics else []
            evaluator = LeanEvaluationPlugin(*chosen, loggers=[])
            strategy = build_strategy(
                cfg, model=FirstStep(), device=torch.device("cpu"), evaluator=evaluator
            )

            def train():
                with previous_iteration() if previous else contextlib.nullcontext():
                    strategy.train(experience)

            return train

        return ready

    contenders = {
        "hand-written loop (Adam, clipping, LR schedule)": hand,
        "Avalanche Naive, no plugins, no metrics": avalanche,
        "clstm before (Avalanche's loops, DataLoader, Avalanche's evaluator dispatch), with its "
        "training metrics": clstm(True, previous=True),
        "clstm's strategy (LSTM plugin, divergence guard, loaders), no metrics": clstm(False),
        "clstm's strategy with its training metrics": clstm(True),
    }
    log(f"fixed cost per iteration: {per_epoch} iterations per epoch, {short} and {long} epochs")
    names = [f"{name}|{epochs}" for name in contenders for epochs in (short, long)]
    results: dict[str, dict] = {name: {"times": []} for name in names}
    with silenced_output():  # Avalanche warns that an evaluator without loggers logs nothing
        for r in range(repeats):  # the order rotates, as alternate() does
            for key in names[r % len(names) :] + names[: r % len(names)]:
                name, epochs = key.rsplit("|", 1)
                train = contenders[name](int(epochs))
                started = time.perf_counter()
                train()
                results[key]["times"].append(time.perf_counter() - started)
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

    from clstm.run.runner import run_experiment

    setting = Setting(n_train=64, n_test=32, seq_len=10, epochs=1)
    bench = build_benchmark(setting)
    parts = {
        "TensorBoard writer (TensorboardLogger)": (
            "avalanche.logging.tensorboard_logger", "TensorboardLogger.__init__"),
        "accuracy-matrix heatmap images": ("clstm.plugins.accuracy_matrix",
                                           "AccuracyMatrixMetric.heatmap"),
        "HParams": ("clstm.run.logging", "write_final_hparams"),
        "checkpoints (save_strategy)": ("clstm.run.checkpoint", "save_strategy"),
        "provenance (git state, versions)": ("clstm.run.provenance", "provenance"),
        "TensorBoard view file": ("clstm.run.runner", "_update_tensorboard_view"),
        "JSON files (meta.json, metrics.json)": ("clstm.run.runner", "write_json_atomic"),
        "text files (config.yaml, CSV)": ("clstm.run.runner", "write_text_atomic"),
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
        # metrics.json and the matrices' CSV files are written by the run's outcome
        wrap("JSON files (meta.json, metrics.json)", "clstm.run.outcome", "write_json_atomic")
        wrap("text files (config.yaml, CSV)", "clstm.run.outcome", "write_text_atomic")
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
