"""``AccuracyMatrixMetric``: the accuracy matrix as an Avalanche ``PluginMetric``.

Put it in an ``EvaluationPlugin`` and call ``strategy.eval(test_stream)`` before training and after
each training experience, as in::

    matrix = AccuracyMatrixMetric()
    strategy = Naive(..., evaluator=EvaluationPlugin(matrix, loggers=[TensorboardLogger()]))
    strategy.eval(benchmark.test_stream)             # initial row b
    for experience in benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)         # row R[i]
    initial, R = matrix.result()

Evaluations that happen inside ``strategy.train`` (Avalanche's periodic evaluation) are ignored: a
row is the state of the model between experiences. Only experiences of the stream named ``stream``
count (``"test"`` by default; a second instance with ``stream="valid", prefix="valid/"`` records the
validation stream's matrix). After each full evaluation the metric emits,
with ``x_plot`` = number of experiences trained so far (0 for the initial row):

- ``accuracy/expNN``: accuracy on experience NN's test set;
- ``cl/ACC``, ``cl/learning_accuracy`` and, once two experiences are trained, ``cl/BWT``,
  ``cl/forgetting``, ``cl/forgetting_learned`` and ``forgetting/expNN``; ``cl/FWT`` when the
  initial row was measured. Each is the :mod:`clstm.metrics` function of the leading ``k x k``
  block of ``R`` after ``k`` experiences (see there for the formulas);
- ``accuracy_matrix``: the rows measured so far as a heatmap image.
"""

from __future__ import annotations

import numpy as np
import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from clstm import metrics as clm


class AccuracyMatrixMetric(PluginMetric):
    """Accuracy on every evaluated experience after each training experience (and before any)."""

    def __init__(self, stream: str = "test", prefix: str = ""):
        super().__init__()
        self.stream = stream
        self.prefix = prefix
        self.reset()

    def reset(self) -> None:
        """Forget every measured row."""
        self._rows: dict[int, dict[int, float]] = {}  # experiences trained -> {test exp: accuracy}
        self._n_experiences = 0
        self._in_training = False
        self._correct: torch.Tensor | int = 0
        self._seen = 0
        self._touched = False

    def result(self) -> tuple[np.ndarray | None, np.ndarray]:
        """``(initial, R)``: the initial row ``(T,)`` (or ``None`` if not measured) and ``R``.

        ``R`` is ``(T, T)``; entries never measured (rows after a run stopped) are NaN.
        """
        T = self._n_experiences
        R = np.full((T, T), np.nan)
        initial = None
        for k, row in self._rows.items():
            target = np.full(T, np.nan)
            for j, acc in row.items():
                target[j] = acc
            if k == 0:
                initial = target
            elif k <= T:
                R[k - 1] = target
        return initial, R

    # -- hooks (called by EvaluationPlugin) -----------------------------------------------------

    def before_training(self, strategy) -> None:
        self._in_training = True

    def after_training(self, strategy) -> None:
        self._in_training = False

    def before_eval(self, strategy) -> None:
        self._touched = False

    def before_eval_exp(self, strategy) -> None:
        self._correct, self._seen = 0, 0

    def after_eval_iteration(self, strategy) -> None:
        super().after_eval_iteration(strategy)
        predicted = strategy.mb_output.argmax(dim=1)  # (B,)
        self._correct = self._correct + (predicted == strategy.mb_y).sum()  # stays on device
        self._seen += len(strategy.mb_y)

    def after_eval_exp(self, strategy) -> None:
        if self._in_training or self._seen == 0:
            return
        experience = strategy.experience
        if getattr(experience.origin_stream, "name", self.stream) != self.stream:
            return
        self._touched = True
        try:
            stream_length = len(experience.origin_stream)
        except TypeError:  # a lazily generated stream has no length
            stream_length = 0
        j = experience.current_experience
        self._n_experiences = max(self._n_experiences, stream_length, j + 1)
        k = strategy.clock.train_exp_counter
        self._rows.setdefault(k, {})[j] = float(self._correct) / self._seen

    def after_eval(self, strategy) -> list[MetricValue] | None:
        if self._in_training or not self._touched:
            return None
        k = strategy.clock.train_exp_counter
        if k not in self._rows:
            return None
        values = [
            MetricValue(self, self.prefix + name, value, k)
            for name, value in self.values_after(k).items()
            if value is not None
        ]
        return [*values, MetricValue(self, self.prefix + "accuracy_matrix", self.heatmap(k), k)]

    def heatmap(self, k: int):
        """The accuracy matrix after ``k`` experiences (initial row first) as a PIL image."""
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from PIL import Image

        initial, R = self.result()
        rows = ([initial] if initial is not None else []) + list(R[:k])
        labels = (["init"] if initial is not None else []) + [str(i) for i in range(k)]
        data = np.array(rows) if rows else np.full((1, R.shape[1]), np.nan)
        fig, ax = plt.subplots(figsize=(1 + 0.5 * R.shape[1], 1 + 0.4 * len(data)), dpi=80)
        ax.imshow(data, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(data):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="w" if v < 0.6 else "k")  # fmt: skip
        ax.set_xticks(range(R.shape[1]))
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("test set of experience")
        ax.set_ylabel("after training on")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    def values_after(self, k: int) -> dict[str, float | None]:
        """Scalars describing the model after ``k`` training experiences (see module docstring)."""
        values: dict[str, float | None] = {
            f"accuracy/exp{j:02d}": acc for j, acc in sorted(self._rows[k].items())
        }
        initial, R = self.result()
        block = R[:k, :k]
        if k == 0 or np.isnan(block).any():
            return values
        known = initial is not None and not np.isnan(initial[:k]).any()
        summary = clm.summarize(block, initial[:k] if known else None)
        values.update(
            {
                "cl/ACC": summary["acc"],
                "cl/BWT": summary["bwt"],
                "cl/FWT": summary["fwt"],
                "cl/forgetting": summary["forgetting"],
                "cl/forgetting_learned": summary["forgetting_learned"],
                "cl/learning_accuracy": summary["learning_accuracy"],
            }
        )
        for j, f in enumerate(summary["per_experience"]["forgetting"][:-1]):
            values[f"forgetting/exp{j:02d}"] = f
        return values

    def __str__(self) -> str:
        return "AccuracyMatrix"
