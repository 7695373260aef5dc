"""``ExperienceLossMetric``: the training loss per experience, on the experience axis."""

from __future__ import annotations

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue


class ExperienceLossMetric(PluginMetric):
    """Mean training loss over the last epoch of each experience, emitted as ``train/loss``.

    Its ``x_plot`` is the number of experiences trained (1 after the first), the step of every
    clstm scalar, so runs with different epochs or data sizes line up in TensorBoard.
    """

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0

    def result(self) -> float | None:
        return self._total / self._count if self._count else None

    def before_training_epoch(self, strategy) -> None:
        self.reset()

    def after_training_iteration(self, strategy) -> None:
        super().after_training_iteration(strategy)
        n = len(strategy.mb_y)
        self._total += float(strategy.loss.detach()) * n
        self._count += n

    def after_training_exp(self, strategy) -> MetricValue | None:
        # Avalanche's clock counts this experience only after the evaluator's hooks ran.
        value = self.result()
        if value is None:
            return None
        return MetricValue(self, "train/loss", value, strategy.clock.train_exp_counter + 1)

    def __str__(self) -> str:
        return "ExperienceLoss"
