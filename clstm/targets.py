"""What a benchmark asks the model to predict: its *target kind*, one object per kind.

A :class:`TargetKind` owns everything that depends on the kind: how its targets are recognised,
checked and stored, the loss, the score of a batch (correct targets, or errors), the distillation
term of LwF and the coreset replay, the shape of the model's output (one per sequence or one per
step), which matrices a run records and their summaries, and how the CLI, the report, TensorBoard
and sweeps show them. The loop, the models, the strategies, the report and the loggers ask the
kind; none of them compares kind names. Adding a kind = a subclass plus one :func:`register`
line (``tests/test_targets.py`` registers a toy kind and runs it end to end).

The built-in kinds (:data:`KINDS`, in the order :func:`kind_of` tries them):

- ``sequence``: one class per sequence. Targets ``y`` are ``(B,)`` class indices; the model emits
  ``(B, C)`` logits read at each sequence's last real step. Loss: cross-entropy, mean over
  sequences. Accuracy: the fraction of sequences whose arg-max logit is their class.
- ``per_step``: one class per step. Targets are ``(B, T)`` class indices with :data:`NO_TARGET`
  at steps that carry none (input-only steps, padding); the model emits ``(B, T', C)`` logits,
  one per step (``T' <= T``: the batch trimmed to its longest sequence, beyond which every target
  is :data:`NO_TARGET`). Loss: cross-entropy summed over a sequence's target steps, mean over
  sequences. Accuracy: the fraction of target steps predicted right.
- ``per_step_bits``: several binary decisions per step (the Copy Task's bit patterns). Targets are
  ``(B, T, W)`` floats in ``{0, 1}``, with :data:`NO_TARGET` in every bit of a step without a
  target; the model emits ``(B, T', W)`` logits. Loss: binary cross-entropy with logits summed
  over a sequence's target bits, mean over sequences (Ehret et al. 2021's loss). Accuracy: the
  fraction of target bits predicted right (logit >= 0 means 1).
- ``regression``: real values per sequence (a forecast of the next ``horizon`` steps of every
  channel, flattened): targets ``(B, K)`` floats, output ``(B, K)`` read at the last real step.
  Loss: mean squared error. No accuracy: errors (MSE, MAE) per experience instead
  (:class:`clstm.plugins.error_matrix.ErrorMatrixMetric`), lower is better.

The per-step losses sum over a sequence's targets so that a sequence weighs the same whatever its
share of target steps, and so that regularisation strengths (EWC's lambda, ...) compare with the
Copy Task literature, which uses this reduction. The kind of a batch's targets is read from their
shape and type (:func:`kind_of`), so metrics need no configuration.

Importing this module imports numpy, not torch: the CLI's ``list`` and ``report`` and the config
checks read the kinds' descriptions without paying for torch. Torch is imported where a kind
computes (its loss classes are made on first use, under their names here, so that checkpoints
pickle them as ``clstm.targets.PerStepCrossEntropy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clstm import metrics as clm
from clstm.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: target value of a step (or bit) that carries no target
NO_TARGET = -1


def carried_steps(y: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` per-step targets (classes, or bits ``(B, T, W)``) -> ``(B, T)`` bools, true at
    the steps that carry a target (not :data:`NO_TARGET`), false at input-only steps and
    padding."""
    carried = y != NO_TARGET
    return carried.any(dim=-1) if y.dim() == 3 else carried


def target_steps(y: torch.Tensor) -> torch.Tensor:
    """:func:`carried_steps` as ``(B, T)`` floats: 1 at the steps that carry a target, 0 else."""
    import torch

    return carried_steps(y).to(torch.float32)


def trimmed(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-step targets ``y`` cut to the output's steps; steps beyond them must carry none."""
    steps = output.shape[1]
    if y.shape[1] > steps and bool((y[:, steps:] != NO_TARGET).any()):
        raise ValueError(
            f"targets beyond step {steps} but the batch's sequences end there: a target must lie "
            "within its sequence's real steps"
        )
    return y[:, :steps]


def _make_losses() -> None:
    """Define :class:`PerStepCrossEntropy` and :class:`PerStepBitsBCE` (torch modules) here."""
    import torch.nn.functional as F
    from torch import nn

    class PerStepCrossEntropy(nn.Module):
        """Cross-entropy over the steps that carry a target, summed per sequence, mean over
        sequences."""

        def forward(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            y = trimmed(output, y)
            losses = F.cross_entropy(
                output.flatten(0, 1), y.flatten(), ignore_index=NO_TARGET, reduction="sum"
            )
            return losses / len(y)

    class PerStepBitsBCE(nn.Module):
        """Binary cross-entropy with logits over the target bits, summed per sequence, mean over
        sequences."""

        def forward(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            y = trimmed(output, y)
            mask = (y != NO_TARGET).to(output.dtype)  # the weight: 0 where no target
            loss = F.binary_cross_entropy_with_logits(
                output, y.clamp(min=0), weight=mask, reduction="sum"
            )
            return loss / len(y)

    for cls in (PerStepCrossEntropy, PerStepBitsBCE):
        cls.__qualname__ = cls.__name__  # pickled as clstm.targets.<name>
        globals()[cls.__name__] = cls


def __getattr__(name: str):
    if name in ("PerStepCrossEntropy", "PerStepBitsBCE"):
        _make_losses()
        return globals()[name]
    raise AttributeError(f"module 'clstm.targets' has no attribute '{name}'")


class TargetKind:
    """What the model predicts for one kind of target, and how its results are shown.

    Subclasses set the class attributes and implement :meth:`matches`, :meth:`criterion`,
    :meth:`score` and :meth:`distill`; the families below (:class:`AccuracyKind`,
    :class:`RegressionKind`) carry what their members share.
    """

    name: str = ""
    description: str = ""
    #: the model emits an output at every step (a per-step head), not one per sequence
    per_step: bool = False
    #: one class per sequence: class-incremental heads, class-balanced memories, GDumb
    classes: bool = False
    #: the family of matrices and summaries its runs record (runs of one family share tables)
    family: str = ""
    #: the matrices a run records, the first one shown first (:data:`clstm.metrics.MEASURES`)
    measures: tuple[str, ...] = ()
    #: its runs' summaries in reports and CSV (:data:`clstm.metrics.METRICS` keys)
    summary_keys: tuple[str, ...] = ()
    #: the columns of its LaTeX and terminal tables, and its HParams metrics
    default_columns: tuple[str, ...] = ()
    #: the summaries printed at the end of a run, and kept in each row of ``sweep.json``
    cli_keys: tuple[str, ...] = ()
    sweep_keys: tuple[str, ...] = ()
    #: what a sweep's progress line shows of a finished run
    progress_keys: tuple[str, ...] = ()
    #: its charts in TensorBoard's Custom Scalars: title -> tag patterns
    charts: dict[str, list[str]] = {}
    #: the distillation is softened by a temperature (classes and bits; not real values)
    tempered: bool = True

    # -- targets --------------------------------------------------------------------------------

    def matches(self, y: torch.Tensor) -> bool:
        """Whether a batch of targets ``y`` is of this kind (from its shape and type)."""
        raise NotImplementedError

    def check_targets(self, x: np.ndarray, lengths: np.ndarray, y: np.ndarray, where: str):
        """Raise :class:`DataError` naming ``where`` unless ``y`` are targets of this kind for
        the ``(N, T, F)`` inputs ``x`` of the given lengths."""
        raise NotImplementedError

    def stored_targets(self, y: np.ndarray, steps: int) -> torch.Tensor:
        """``y`` as a stream stores them (per-step targets padded to the stream's ``steps``)."""
        raise NotImplementedError

    # -- training and scores --------------------------------------------------------------------

    def criterion(self) -> nn.Module:
        """The training loss."""
        raise NotImplementedError

    def score(self, output: torch.Tensor, y: torch.Tensor, measure: str):
        """``(sum, count)`` a batch adds to an experience's ``measure`` (sum / count), the sum on
        the output's device (no host sync)."""
        raise NotImplementedError

    def distill(self, out, prev, steps, temperature: float) -> torch.Tensor:
        """The distillation term of one head: the outputs ``out`` pulled towards a teacher's
        ``prev``; ``steps`` ``(B, T')`` is 1 at the steps distilled (per-step kinds)."""
        raise NotImplementedError

    # -- what a run records ---------------------------------------------------------------------

    def record(self, results: dict, completed: bool) -> dict:
        """metrics.json's scores from ``results`` (``{measure: (initial row or None, matrix)}``):
        the matrices and their summaries (``None`` unless ``completed``)."""
        raise NotImplementedError

    @property
    def accuracy(self) -> bool:
        """Whether its runs measure accuracies (else errors)."""
        return "accuracy" in self.measures

    @property
    def matrix_title(self) -> str:
        """The heading of the matrix a run prints."""
        m = clm.MEASURES[self.measures[0]]
        better = "" if m.higher_is_better else "; lower is better"
        return f"{m.label} (rows: after training on; columns: test set of{better})"

    def __repr__(self) -> str:
        return f"<target kind {self.name}>"

    def __reduce__(self):  # pickles (checkpoints, sweep workers) refer to the registered kind
        return (kind_named, (self.name,))


class AccuracyKind(TargetKind):
    """Kinds scored by accuracy: the accuracy matrix, ACC, BWT, FWT, forgetting, LA."""

    family = "accuracy"
    measures = ("accuracy",)
    summary_keys = clm.ACCURACY_KEYS
    default_columns = ("acc", "bwt", "forgetting", "learning_accuracy")
    cli_keys = ("acc", "bwt", "forgetting", "fwt", "learning_accuracy")
    sweep_keys = ("acc", "bwt", "forgetting")
    progress_keys = ("acc", "forgetting")
    charts = {
        "ACC (average accuracy on the experiences seen)": ["Multiline", [r"^cl/ACC$"]],
        "forgetting (best earlier minus now)": ["Multiline", [r"^cl/forgetting$"]],
        "BWT": ["Multiline", [r"^cl/BWT$"]],
        "learning accuracy": ["Multiline", [r"^cl/learning_accuracy$"]],
    }

    def record(self, results: dict, completed: bool) -> dict:
        initial, R = results["accuracy"]
        return clm.accuracy_record(R, initial, completed)

    def score(self, output, y, measure: str = "accuracy"):
        """``(correct, counted)``: targets predicted right and targets counted."""
        return self.correct(output, y)

    def correct(self, output, y):
        """``(correct, counted)``: targets predicted right (a tensor on the output's device) and
        targets counted - sequences (an int), target steps or target bits (tensors)."""
        raise NotImplementedError


class SequenceKind(AccuracyKind):
    name = "sequence"
    description = "one class per sequence"
    classes = True

    def matches(self, y):
        return y.dim() == 1 and not y.is_floating_point()

    def criterion(self):
        from torch import nn

        return nn.CrossEntropyLoss()

    def correct(self, output, y):
        return (output.argmax(dim=1) == y).sum(), len(y)

    def distill(self, out, prev, steps, temperature):
        """The KL divergence over the previous model's classes (a growing head has more now),
        mean over sequences."""
        import torch
        import torch.nn.functional as F

        t = temperature
        out = out[:, : prev.shape[1]]
        return F.kl_div(
            torch.log_softmax(out / t, dim=1), torch.softmax(prev / t, dim=1), reduction="batchmean"
        )


class _PerStepKind(AccuracyKind):
    """Per-step kinds: targets ``(B, T, ...)`` at the stream's steps, NO_TARGET where none."""

    per_step = True
    dims = 2  # of y: (N, T), or (N, T, W) for bits

    def check_targets(self, x, lengths, y, where):
        shape = "(N, T, W)" if self.dims == 3 else "(N, T)"
        if y.ndim != self.dims or y.shape[:2] != x.shape[:2]:
            raise DataError(
                f"{where}: {self.name} targets must have shape {shape} matching x "
                f"{x.shape[:2]}, got {y.shape}"
            )
        beyond = np.arange(x.shape[1])[None, :] >= np.asarray(lengths)[:, None]  # (N, T) padding
        if (y.reshape(*y.shape[:2], -1)[beyond] != NO_TARGET).any():
            raise DataError(f"{where}: a target lies beyond its sequence's length")

    def stored_targets(self, y, steps):
        import torch

        padded = np.full((len(y), steps, *y.shape[2:]), NO_TARGET, dtype=y.dtype)
        padded[:, : y.shape[1]] = y  # targets at the stream's steps, none after the end
        return torch.from_numpy(padded)

    def correct(self, output, y):
        y = trimmed(output, y)
        mask = y != NO_TARGET
        return ((self.predicted(output).to(y.dtype) == y) & mask).sum(), mask.sum()


class PerStepKind(_PerStepKind):
    name = "per_step"
    description = "one class per step"

    def matches(self, y):
        return y.dim() == 2 and not y.is_floating_point()

    def stored_targets(self, y, steps):
        return super().stored_targets(y, steps).long()

    def criterion(self):
        return __getattr__("PerStepCrossEntropy")()

    def predicted(self, output):
        return output.argmax(dim=-1)

    def distill(self, out, prev, steps, temperature):
        """The KL divergence at every distilled step, summed over a sequence's steps, mean over
        sequences (as the per-step loss)."""
        import torch
        import torch.nn.functional as F

        t = temperature
        kl = F.kl_div(
            torch.log_softmax(out / t, dim=-1), torch.softmax(prev / t, dim=-1), reduction="none"
        ).sum(dim=-1)  # (B, T')
        return (kl * steps).sum() / len(out)


class PerStepBitsKind(_PerStepKind):
    name = "per_step_bits"
    description = "bits at every step (the Copy Task)"
    dims = 3

    def matches(self, y):
        return y.dim() == 3 and y.is_floating_point()

    def stored_targets(self, y, steps):
        return super().stored_targets(y, steps).float()

    def criterion(self):
        return __getattr__("PerStepBitsBCE")()

    def predicted(self, output):
        return output >= 0

    def distill(self, out, prev, steps, temperature):
        """Binary cross-entropy between ``sigmoid(out / T)`` and ``sigmoid(prev / T)`` for every
        bit of every distilled step, summed per sequence, mean over sequences (Ehret et al.'s
        copy-task distillation, without their ``T^2`` factor, as Avalanche's LwF has none)."""
        import torch
        import torch.nn.functional as F

        t = temperature
        bce = F.binary_cross_entropy_with_logits(out / t, torch.sigmoid(prev / t), reduction="none")
        return (bce.sum(dim=-1) * steps).sum() / len(out)


class RegressionKind(TargetKind):
    """Real values per sequence, scored by errors (lower is better)."""

    name = "regression"
    description = "real values per sequence (a forecast)"
    family = "error"
    measures = ("mse", "mae")
    summary_keys = ("mse_final", "mse_increase", "mse_forgetting", "mse_forward_change",
                    "mse_learning", "mae_final")  # fmt: skip
    default_columns = ("mse_final", "mse_increase", "mse_forgetting", "mse_learning")
    cli_keys = summary_keys
    sweep_keys = ("mse_final", "mse_increase", "mse_forgetting")
    progress_keys = ("mse_final", "mse_forgetting")
    charts = {
        "final MSE (experiences seen; lower is better)": ["Multiline", [r"^cl/mse_final$"]],
        "MSE forgetting (final minus best earlier)": ["Multiline", [r"^cl/mse_forgetting$"]],
    }
    tempered = False

    def matches(self, y):
        return y.dim() == 2 and y.is_floating_point()

    def check_targets(self, x, lengths, y, where):
        if y.ndim != 2 or len(y) != len(x) or not np.isfinite(y).all():
            raise DataError(f"{where}: regression targets must be finite (N, K), got {y.shape}")

    def stored_targets(self, y, steps):
        import torch

        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))

    def criterion(self):
        from torch import nn

        return nn.MSELoss()

    def score(self, output, y, measure: str):
        squared, absolute, count = errors(output, y)
        return (squared if measure == "mse" else absolute), count

    def distill(self, out, prev, steps, temperature):
        """The mean squared difference from the teacher's outputs."""
        import torch.nn.functional as F

        return F.mse_loss(out, prev)

    def record(self, results: dict, completed: bool) -> dict:
        nothing = {k: None for k in clm.accuracy_record(np.full((1, 1), np.nan), None, False)}
        # the accuracy keys present and null: never an error in an accuracy field
        return {**nothing, **clm.error_record(results, completed)}


#: kind name -> kind, in the order :func:`kind_of` tries them
KINDS: dict[str, TargetKind] = {}


def register(kind: TargetKind) -> TargetKind:
    """Add a kind (an instance of a :class:`TargetKind` subclass) to :data:`KINDS`."""
    if not kind.name or kind.name in KINDS:
        raise ValueError(f"a target kind needs a new name, got {kind.name!r}")
    KINDS[kind.name] = kind
    return kind


SEQUENCE = register(SequenceKind())
PER_STEP = register(PerStepKind())
PER_STEP_BITS = register(PerStepBitsKind())
REGRESSION = register(RegressionKind())


def kind_named(name: str) -> TargetKind:
    """The registered kind called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(
            f"unknown target kind '{name}'; choose one of {', '.join(KINDS)}"
        ) from None


def kind_of(y: torch.Tensor) -> TargetKind:
    """The target kind of a batch of targets, from its shape and type."""
    for kind in KINDS.values():
        if kind.matches(y):
            return kind
    raise ValueError(
        f"targets of shape {tuple(y.shape)} and type {y.dtype} are none of {', '.join(KINDS)}: "
        "expected (B,) classes, (B, T) classes per step, (B, T, W) float bits per step or "
        "(B, K) real values"
    )


def criterion(kind: str) -> nn.Module:
    """The training loss of the kind called ``kind``."""
    return kind_named(kind).criterion()


def count_correct(output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | int]:
    """``(correct, counted)`` of a batch whose kind scores accuracies
    (:meth:`AccuracyKind.correct`)."""
    kind = kind_of(y)
    if not kind.accuracy:
        raise ValueError(f"{kind.name} targets have no accuracy; measure errors (targets.errors)")
    return kind.correct(output, y)


def errors(output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(sum of squared errors, sum of absolute errors, values counted)`` of a batch of real
    values, the sums on the output's device (no host sync)."""
    if not y.is_floating_point() or output.shape != y.shape:
        raise ValueError(
            f"errors need real-valued outputs and targets of one shape, got {tuple(output.shape)} "
            f"and {tuple(y.shape)}"
        )
    diff = (output - y).detach()
    return diff.pow(2).sum(), diff.abs().sum(), diff.numel()
