"""What a benchmark asks the model to predict (its *target kind*); the loss and accuracy of each.

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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("sequence", "per_step", "per_step_bits", "regression")
#: target value of a step (or bit) that carries no target
NO_TARGET = -1


def kind_of(y: torch.Tensor) -> str:
    """The target kind of a batch of targets, from its shape and type."""
    if y.dim() == 1:
        return "sequence"
    if y.dim() == 2 and not y.is_floating_point():
        return "per_step"
    if y.dim() == 3 and y.is_floating_point():
        return "per_step_bits"
    if y.dim() == 2 and y.is_floating_point():
        return "regression"
    raise ValueError(
        f"targets of shape {tuple(y.shape)} and type {y.dtype} are none of {', '.join(KINDS)}: "
        "expected (B,) classes, (B, T) classes per step, (B, T, W) float bits per step or "
        "(B, K) real values"
    )


def target_steps(y: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` per-step targets (classes, or bits ``(B, T, W)``) -> ``(B, T)`` floats, 1 at the
    steps that carry a target (not :data:`NO_TARGET`), 0 at input-only steps and padding."""
    carried = y != NO_TARGET
    return (carried.any(dim=-1) if y.dim() == 3 else carried).to(torch.float32)


def _trimmed(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y`` cut to the output's steps; steps beyond them must carry no target."""
    steps = output.shape[1]
    if y.shape[1] > steps and bool((y[:, steps:] != NO_TARGET).any()):
        raise ValueError(
            f"targets beyond step {steps} but the batch's sequences end there: a target must lie "
            "within its sequence's real steps"
        )
    return y[:, :steps]


class PerStepCrossEntropy(nn.Module):
    """Cross-entropy over the steps that carry a target, summed per sequence, mean over
    sequences."""

    def forward(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = _trimmed(output, y)
        losses = F.cross_entropy(
            output.flatten(0, 1), y.flatten(), ignore_index=NO_TARGET, reduction="sum"
        )
        return losses / len(y)


class PerStepBitsBCE(nn.Module):
    """Binary cross-entropy with logits over the target bits, summed per sequence, mean over
    sequences."""

    def forward(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = _trimmed(output, y)
        mask = y != NO_TARGET
        losses = F.binary_cross_entropy_with_logits(output, y.clamp(min=0), reduction="none")
        return (losses * mask).sum() / len(y)


def criterion(kind: str) -> nn.Module:
    """The training loss of a target kind."""
    if kind == "sequence":
        return nn.CrossEntropyLoss()
    if kind == "per_step":
        return PerStepCrossEntropy()
    if kind == "per_step_bits":
        return PerStepBitsBCE()
    if kind == "regression":
        return nn.MSELoss()
    raise ValueError(f"unknown target kind '{kind}'; choose one of {', '.join(KINDS)}")


def count_correct(output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | int]:
    """``(correct, counted)``: targets predicted right (a tensor on the output's device, so no
    host sync) and targets counted - sequences (an int), target steps or target bits (tensors)."""
    kind = kind_of(y)
    if kind == "sequence":
        return (output.argmax(dim=1) == y).sum(), len(y)
    if kind == "regression":
        raise ValueError("regression targets have no accuracy; measure errors (targets.errors)")
    y = _trimmed(output, y)
    mask = y != NO_TARGET
    predicted = output.argmax(dim=-1) if kind == "per_step" else (output >= 0).to(y.dtype)
    return ((predicted == y) & mask).sum(), mask.sum()


def errors(output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(sum of squared errors, sum of absolute errors, values counted)`` of a regression batch,
    the sums on the output's device (no host sync)."""
    if kind_of(y) != "regression" or output.shape != y.shape:
        raise ValueError(
            f"errors need regression outputs and targets of one shape, got {tuple(output.shape)} "
            f"and {tuple(y.shape)}"
        )
    diff = (output - y).detach()
    return diff.pow(2).sum(), diff.abs().sum(), diff.numel()
