"""What sits on a recurrent encoder: the classifier head, and the per-task input projections."""

from __future__ import annotations

import torch
from torch import nn

from clstm.models.encoder import RecurrentEncoder, dropped, scattered


class SequenceClassifier(nn.Module):
    """A :class:`RecurrentEncoder` followed by dropout and a head over the classes.

    ``head`` defaults to a linear layer over ``n_classes`` (one shared head: the domain scenario);
    the class scenario passes Avalanche's ``IncrementalClassifier``, which grows with the classes
    seen and masks the others.
    """

    def __init__(
        self,
        encoder: RecurrentEncoder,
        n_classes: int | None = None,
        dropout: float = 0.0,
        head: nn.Module | None = None,
    ):
        super().__init__()
        if (n_classes is None) == (head is None):
            raise ValueError("give either n_classes or head")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = head if head is not None else nn.Linear(encoder.out_features, n_classes)

    @property
    def gathers_steps(self) -> bool:
        """Whether :meth:`forward` takes ``steps`` (a per-step encoder)."""
        return self.encoder.per_step

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for a padded batch ``(B, T, F + 1)`` (``(B, T', n_classes)``,
        one per step, with a ``per_step`` encoder).

        ``steps`` (per-step encoders): a ``(B, T)`` bool mask of the steps whose logits are
        wanted (those that carry a target); the encoder's output layer and the head are applied
        there alone and the result is ``(B, T, n_classes)``, zeros elsewhere (:func:`selected`).
        """
        steps = selected(self, steps)
        if steps is None:
            return self.head(dropped(self.dropout, self.encoder(x)))
        return scattered(self.head(dropped(self.dropout, self.encoder(x, steps))), steps)


def selected(model: nn.Module, steps: torch.Tensor | None) -> torch.Tensor | None:
    """``steps``, or ``None`` (every step's output computed) while the model's dropout is active
    in training: dropout on the selected steps alone would draw other random numbers than on
    every step, so the numbers would differ from the all-steps computation's."""
    if steps is None or (model.training and model.dropout.p > 0):
        return None
    return steps


class TaskInputProjection(nn.Module):
    """A learned linear map of one task's own ``F_t`` features to ``size`` channels (mask kept)."""

    def __init__(self, n_features: int, size: int):
        super().__init__()
        self.n_features = n_features
        self.linear = nn.Linear(n_features, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, F_max + 1) -> (B, T, size + 1)
        return torch.cat([self.linear(x[..., : self.n_features]), x[..., -1:]], dim=-1)
