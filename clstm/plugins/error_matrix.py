"""``ErrorMatrixMetric``: the error matrix ``E[i][j]`` (MSE or MAE) of regression targets.

The regression counterpart of :class:`~clstm.plugins.accuracy_matrix.AccuracyMatrixMetric`, with
the same protocol (evaluate the stream before training and after every experience) and streams;
one instance per error measure. ``E[i][j]`` is the mean error per target value on experience
``j``'s test set after training on ``0..i``. After each full evaluation it emits, with
``x_plot`` = experiences trained so far:

- ``error/<measure>/expNN``: the error on experience NN;
- ``cl/<measure>_final``, ``cl/<measure>_learning`` and, once two experiences are trained,
  ``cl/<measure>_increase`` (final minus right after learning, positive = forgotten) and
  ``cl/<measure>_forgetting`` (final minus the best earlier value); ``cl/<measure>_forward_change``
  when the initial row was measured (negative = earlier experiences lowered the error): the
  :mod:`clstm.metrics` error summaries of the leading ``k x k`` block (only
  ``cl/<measure>_final`` when the block's last row alone is measured: joint training);
- ``error_matrix_<measure>``: the rows so far as a heatmap, coloured relative to the largest error.
"""

from __future__ import annotations

import numpy as np

from clstm import metrics as clm
from clstm.plugins.accuracy_matrix import AccuracyMatrixMetric
from clstm.targets import errors

MEASURES = ("mse", "mae")


def matrix_metric(measure: str, stream: str | None = None, prefix: str = ""):
    """The matrix metric of ``measure``: :class:`AccuracyMatrixMetric` for ``accuracy``,
    :class:`ErrorMatrixMetric` for an error (``mse``, ``mae``)."""
    if measure == "accuracy":
        return AccuracyMatrixMetric(stream=stream, prefix=prefix)
    return ErrorMatrixMetric(measure, stream=stream, prefix=prefix)


class ErrorMatrixMetric(AccuracyMatrixMetric):
    """Mean squared (``mse``) or absolute (``mae``) error on every experience after each one."""

    def __init__(self, measure: str = "mse", stream: str | None = None, prefix: str = ""):
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got '{measure}'")
        self.measure = measure
        self.IMAGE = f"error_matrix_{measure}"
        super().__init__(stream=stream, prefix=prefix)

    def _batch(self, strategy):
        squared, absolute, count = errors(strategy.mb_output, strategy.mb_y)
        return (squared if self.measure == "mse" else absolute), count

    def _colour_values(self, data: np.ndarray) -> np.ndarray:
        top = np.nanmax(data) if np.isfinite(data).any() else 1.0
        return 1.0 - np.clip(data / (top or 1.0), 0, 1)  # low error = bright, as high accuracy

    def values_after(self, k: int) -> dict[str, float | None]:
        m = self.measure
        values: dict[str, float | None] = {
            f"error/{m}/exp{j:02d}": e for j, e in sorted(self._rows[k].items())
        }
        measured = self.leading_block(k)
        if measured is None:
            last = self.final_row(k)  # joint: the final error alone, as metrics.json has it
            if last is not None:
                values[f"cl/{m}_final"] = float(np.mean(last))  # clm.average_error: last row's mean
            return values
        s = clm.summarize_errors(*measured)
        values.update(
            {
                f"cl/{m}_final": s["final_error"],
                f"cl/{m}_learning": s["learning_error"],
                f"cl/{m}_increase": s["error_increase"],
                f"cl/{m}_forgetting": s["error_forgetting"],
                f"cl/{m}_forward_change": s["forward_error_change"],
            }
        )
        return values

    def __str__(self) -> str:
        return f"ErrorMatrix[{self.measure}]"
