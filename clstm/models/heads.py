"""What sits on a recurrent encoder: the classifier head, and the per-task input projections."""

from __future__ import annotations

import torch
from torch import nn

from clstm.models.encoder import RecurrentEncoder, dropped


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for a padded batch ``(B, T, F + 1)`` (``(B, T', n_classes)``,
        one per step, with a ``per_step`` encoder)."""
        return self.head(dropped(self.dropout, self.encoder(x)))


class TaskInputProjection(nn.Module):
    """A learned linear map of one task's own ``F_t`` features to ``size`` channels (mask kept)."""

    def __init__(self, n_features: int, size: int):
        super().__init__()
        self.n_features = n_features
        self.linear = nn.Linear(n_features, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, F_max + 1) -> (B, T, size + 1)
        return torch.cat([self.linear(x[..., : self.n_features]), x[..., -1:]], dim=-1)
