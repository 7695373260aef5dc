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
row is the state of the model between experiences. Only experiences of one stream count: the stream
named ``stream``, or by default (``stream=None``) the first stream evaluated outside training,
whatever its name (``test`` in clstm's benchmarks, ``eval`` or ``valid`` in some of Avalanche's);
a second instance with ``stream="valid", prefix="valid/"`` records the validation stream's matrix.
``result()`` raises ``ValueError`` (one line, naming the streams it did see) if no evaluation of
that stream was ever seen, instead of returning an empty matrix. After each full evaluation the
metric emits, with ``x_plot`` = number of experiences trained so far (0 for the initial row):

- ``accuracy/expNN``: accuracy on experience NN's test set;
- ``cl/ACC``, ``cl/learning_accuracy`` and, once two experiences are trained, ``cl/BWT``,
  ``cl/forgetting``, ``cl/forgetting_learned`` and ``forgetting/expNN``; ``cl/FWT`` when the
  initial row was measured. Each is the :mod:`clstm.metrics` function of the leading ``k x k``
  block of ``R`` after ``k`` experiences (see there for the formulas). When only the last row
  of that block is measured (joint training: no intermediate models), ``cl/ACC`` alone;
- ``accuracy_matrix``: the rows measured so far as a heatmap image.
"""

from __future__ import annotations

import numpy as np
import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from clstm import metrics as clm
from clstm.targets import count_correct


class AccuracyMatrixMetric(PluginMetric):
    """Accuracy on every evaluated experience after each training experience (and before any)."""

    #: what its cells hold (:data:`clstm.metrics.MEASURES`)
    measure = "accuracy"

    def __init__(self, stream: str | None = None, prefix: str = ""):
        """:param stream: name of the evaluated stream whose experiences are the columns
        (``"test"``, ``"valid"``, ...); ``None`` follows the first stream evaluated outside
        training. :param prefix: prepended to every emitted metric name (``"valid/"``)."""
        super().__init__()
        self.stream = stream
        self._follows = stream is None
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
        self._streams_seen: set[str] = set()
        if self._follows:
            self.stream = None

    @property
    def measured(self) -> bool:
        """Whether at least one evaluation of the stream was recorded."""
        return bool(self._rows)

    def result(self) -> tuple[np.ndarray | None, np.ndarray]:
        """``(initial, R)``: the initial row ``(T,)`` (or ``None`` if not measured) and ``R``.

        ``R`` is ``(T, T)``; entries never measured (rows after a run stopped) are NaN. Raises
        ``ValueError`` when no evaluation of the stream was seen at all.
        """
        if not self._rows:
            seen = ", ".join(sorted(self._streams_seen)) or "none"
            wanted = f"stream '{self.stream}'" if self.stream else "any stream"
            raise ValueError(
                f"AccuracyMatrixMetric saw no evaluation of {wanted} outside training (streams "
                f"evaluated: {seen}); call strategy.eval(<stream>) between experiences, or pass "
                "AccuracyMatrixMetric(stream=<its name>)"
            )
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

    #: name of the heatmap image it emits
    IMAGE = "accuracy_matrix"

    def _batch(self, strategy):
        """``(sum, count)`` this batch adds to the experience's score (sum / count)."""
        return count_correct(strategy.mb_output, strategy.mb_y)

    def after_eval_iteration(self, strategy) -> None:
        super().after_eval_iteration(strategy)
        total, counted = self._batch(strategy)
        self._correct = self._correct + total  # stays on device
        self._seen = self._seen + counted  # sequences, or target steps/bits (clstm.targets)

    def after_eval_exp(self, strategy) -> None:
        if self._in_training or not self._seen:
            return
        experience = strategy.experience
        name = getattr(experience.origin_stream, "name", None) or "unnamed"
        self._streams_seen.add(name)
        if self.stream is None:  # follow the first stream evaluated outside training
            self.stream = name
        if name != self.stream:
            return
        self._touched = True
        try:
            stream_length = len(experience.origin_stream)
        except TypeError:  # a lazily generated stream has no length
            stream_length = 0
        j = experience.current_experience
        self._n_experiences = max(self._n_experiences, stream_length, j + 1)
        k = strategy.clock.train_exp_counter
        self._rows.setdefault(k, {})[j] = float(self._correct) / float(self._seen)

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
        return [*values, MetricValue(self, self.prefix + self.IMAGE, self.heatmap(k), k)]

    def _colour_values(self, data: np.ndarray) -> np.ndarray:
        """Cell values mapped to [0, 1] for the colour map (accuracies are already)."""
        return np.clip(data, 0, 1)

    def heatmap(self, k: int):
        """The accuracy matrix after ``k`` experiences (initial row first) as a PIL image.

        Drawn directly with Pillow (viridis colours, each cell's value written in it): one
        matplotlib figure per evaluation cost ~0.15 s, a tenth of a small model's evaluation.
        """
        from matplotlib import colormaps
        from PIL import Image, ImageDraw, ImageFont

        initial, R = self.result()
        rows = ([initial] if initial is not None else []) + list(R[:k])
        labels = (["init"] if initial is not None else []) + [str(i) for i in range(k)]
        data = np.array(rows) if rows else np.full((1, R.shape[1]), np.nan)
        font = ImageFont.load_default(size=11)
        cell_w, cell_h, left, top, bottom = 40, 22, 44, 22, 34
        n_rows, n_cols = data.shape
        caption = "columns: test set of experience"
        width = max(left + cell_w * n_cols + 8, left + int(font.getlength(caption)) + 8)
        image = Image.new("RGB", (width, top + cell_h * n_rows + bottom), "white")
        draw = ImageDraw.Draw(image)
        draw.text((4, 4), "rows: after training on", fill="black", font=font)
        scaled = np.nan_to_num(self._colour_values(data))
        colours = (colormaps["viridis"](scaled) * 255).astype(int)
        for (i, j), v in np.ndenumerate(data):
            x0, y0 = left + j * cell_w, top + i * cell_h
            if np.isnan(v):
                draw.rectangle((x0, y0, x0 + cell_w - 1, y0 + cell_h - 1), fill=(235, 235, 235))
                continue
            fill = tuple(int(c) for c in colours[i, j, :3])
            draw.rectangle((x0, y0, x0 + cell_w - 1, y0 + cell_h - 1), fill=fill)
            colour = "white" if scaled[i, j] < 0.6 else "black"
            draw.text((x0 + cell_w / 2, y0 + cell_h / 2), f"{v:.2f}", fill=colour, font=font,
                      anchor="mm")  # fmt: skip
        for i, label in enumerate(labels):
            draw.text((left - 6, top + i * cell_h + cell_h / 2), label, fill="black", font=font,
                      anchor="rm")  # fmt: skip
        y_axis = top + n_rows * cell_h
        for j in range(n_cols):
            draw.text((left + j * cell_w + cell_w / 2, y_axis + 3), str(j), fill="black",
                      font=font, anchor="mt")  # fmt: skip
        draw.text((left, y_axis + 18), caption, fill="black", font=font)
        return image

    def leading_block(self, k: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The measured ``k x k`` block of the matrix after ``k`` experiences and the initial
        row's first ``k`` values (None if not measured), or None while the block is incomplete."""
        initial, R = self.result()
        block = R[:k, :k]
        if k == 0 or np.isnan(block).any():
            return None
        known = initial is not None and not np.isnan(initial[:k]).any()
        return block, initial[:k] if known else None

    def final_row(self, k: int) -> np.ndarray | None:
        """Row ``k - 1`` of the matrix on the first ``k`` experiences (the model after ``k``
        experiences), or None while any of it is unmeasured. All that ACC (and the final error)
        needs: a joint run, which has no intermediate models, measures this row alone."""
        row = self._rows.get(k, {})
        if k == 0 or any(j not in row or np.isnan(row[j]) for j in range(k)):
            return None
        return np.array([row[j] for j in range(k)])

    def values_after(self, k: int) -> dict[str, float | None]:
        """Scalars describing the model after ``k`` training experiences (see module docstring)."""
        values: dict[str, float | None] = {
            f"accuracy/exp{j:02d}": acc for j, acc in sorted(self._rows[k].items())
        }
        measured = self.leading_block(k)
        if measured is None:
            last = self.final_row(k)  # joint: ACC alone, as metrics.json has it
            if last is not None:
                values["cl/ACC"] = float(np.mean(last))  # clm.average_accuracy: the last row's mean
            return values
        summary = clm.summarize(*measured)
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
