"""Loggers of a run: concise console progress (an Avalanche logger) and TensorBoard setup.

TensorBoard files are written by Avalanche's own ``TensorboardLogger``; the console logger prints
one line per training epoch and one per evaluation of the whole stream, nothing per iteration.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from avalanche.logging import BaseLogger

from clstm.plugins.training_curves import EPOCH_ACCURACY, EPOCH_LOSS


class ProgressLogger(BaseLogger):
    """Prints ``exp i/T (name)  epoch e/E  loss  acc  lr  time`` per epoch and each accuracy row."""

    def __init__(self, experience_names: Sequence[str], *, stream: TextIO | None = None):
        super().__init__()
        self.names = list(experience_names)
        self.stream = stream or sys.stdout
        self._lr = float("nan")
        self._started = 0.0

    def __getstate__(self) -> dict:  # checkpoints: a console stream cannot be pickled
        return {k: v for k, v in self.__dict__.items() if k != "stream"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.stream = sys.stdout

    def log_single_metric(self, name, value, x_plot) -> None:
        """Values are read in the hooks below; nothing is printed per value."""

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def before_training_epoch(self, strategy, metric_values, **kwargs) -> None:
        self._lr = strategy.optimizer.param_groups[0]["lr"]
        self._started = time.perf_counter()

    def after_training_epoch(self, strategy, metric_values, **kwargs) -> None:
        values = {m.name: m.value for m in metric_values}
        loss = values.get(EPOCH_LOSS, float("nan"))
        acc = values.get(EPOCH_ACCURACY, float("nan"))
        i = strategy.clock.train_exp_counter
        name = self.names[i] if i < len(self.names) else f"exp{i}"
        self._print(
            f"  exp {i + 1}/{len(self.names)} ({name})  epoch "
            f"{strategy.clock.train_exp_epochs + 1}/{strategy.train_epochs}  loss {loss:.4f}  "
            f"acc {acc:.3f}  lr {self._lr:.2e}  {time.perf_counter() - self._started:.1f}s"
        )

    def after_eval(self, strategy, metric_values, **kwargs) -> None:
        values = {m.name: m.value for m in metric_values}
        row = [values[k] for k in sorted(values) if k.startswith("accuracy/exp")]
        if not row:  # not a row of the accuracy matrix (e.g. periodic evaluation)
            return
        k = strategy.clock.train_exp_counter
        label = "before training" if k == 0 else f"after {self.names[k - 1]}"
        text = " ".join(f"{a:.3f}" for a in row)
        acc = values.get("cl/ACC")
        suffix = f"  ACC {acc:.3f}" if acc is not None else ""
        self._print(f"  eval {label}: accuracy [{text}]{suffix}")
