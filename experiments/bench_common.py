"""What the benchmark scripts share: the settings, the benchmarks, the contenders (a hand-written
loop, clstm, Avalanche's ``Naive``) and running them side by side. Used by ``bench.py`` and
``bench_overhead.py``, beside it."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
    from clstm.run.runner import run_experiment

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


def cpu_name() -> str:
    """This machine's CPU model (``/proc/cpuinfo``), else what ``platform`` says."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_section(text: str, start: str, end: str, out: str | None) -> None:
    """Put ``text`` between the ``start`` and ``end`` markers of the page ``out`` (appended when
    the page has none); nothing without ``out``."""
    if out is None:
        return
    path = Path(out)
    old = path.read_text() if path.is_file() else ""
    if start in old:
        new = old[: old.index(start)] + text + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    path.write_text(new)
    print(f"written: {out}", file=sys.stderr)


def section_main(doc: str, measure, section, start: str, end: str, repeats: int = 5) -> None:
    """The command line of a script that measures one section of results/BENCHMARKS.md:
    ``--repeats``, ``--quick`` (tiny sizes: checks the script only) and ``--out``; measures with
    ``measure(repeats, quick)``, renders with ``section(data, cpu name, repeats)``, prints the
    section and writes it between its markers (not with ``--quick`` unless ``--out`` says)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script only")
    parser.add_argument("--out", default=None, help="default results/BENCHMARKS.md (not --quick)")
    args = parser.parse_args()
    from clstm.run.runner import quiet_library_warnings

    with quiet_library_warnings():
        data = measure(args.repeats, args.quick)
    text = section(data, cpu_name(), args.repeats)
    print(text)
    out = args.out or (None if args.quick else str(ROOT / "results" / "BENCHMARKS.md"))
    write_section(text, start, end, out)
