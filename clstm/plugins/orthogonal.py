"""Hidden-to-hidden weights kept near orthogonal (``train.orthogonal_reg``).

Adds ``lambda * sum_i ||W_i W_i^T - I||_F^2`` to every training loss, ``W_i`` each recurrent
layer's (and direction's) hidden-to-hidden matrix, one per gate for LSTM (4) and GRU (3): the
regulariser Ehret et al. 2021 use on their Copy Task RNNs (``--orthogonal_hh_reg``; their
``sequential/train_utils_sequential.py``, ``orthogonal_regularizer``), which keeps the recurrent
dynamics from exploding or vanishing over the pattern's span.
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin
from torch import nn


def hidden_to_hidden(model: nn.Module) -> list[torch.Tensor]:
    """Every hidden-to-hidden matrix of the model's recurrent layers, split per gate."""
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}
    found = []
    for module in model.modules():
        count = gates.get(type(module))
        if count is None:
            continue
        for name, weight in module.named_parameters():
            if name.startswith("weight_hh"):
                found.extend(weight.chunk(count, dim=0))  # (G*H, H) -> G of (H, H)
    return found


def orthogonal_penalty(model: nn.Module) -> torch.Tensor:
    """``sum_i ||W_i W_i^T - I||_F^2`` over :func:`hidden_to_hidden` (0 without any)."""
    total = None
    for w in hidden_to_hidden(model):
        eye = torch.eye(w.shape[0], device=w.device, dtype=w.dtype)
        term = (w @ w.T - eye).pow(2).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


class OrthogonalRecurrentPlugin(SupervisedPlugin):
    """Adds ``strength * orthogonal_penalty(model)`` to the loss before every backward pass."""

    def __init__(self, strength: float):
        super().__init__()
        if strength <= 0:
            raise ValueError(f"strength must be > 0, got {strength}")
        self.strength = strength

    def before_backward(self, strategy, **kwargs) -> None:
        strategy.loss = strategy.loss + self.strength * orthogonal_penalty(strategy.model)
