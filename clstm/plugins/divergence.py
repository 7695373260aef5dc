"""``DivergenceGuard``: stop training as soon as the loss is NaN or infinite."""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin


class RunDiverged(RuntimeError):
    """Training produced a non-finite loss; the message says where."""


class DivergenceGuard(SupervisedPlugin):
    """Raises :class:`RunDiverged` when a training loss is NaN or infinite.

    The check runs before the backward pass, so the weights are never updated with a non-finite
    gradient; the run ends with ``status: diverged`` and everything measured until then.
    """

    def before_backward(self, strategy, **kwargs):
        """Runs after the loss is computed, before ``loss.backward()``."""
        loss = strategy.loss
        if not bool(torch.isfinite(loss).all()):
            clock = strategy.clock
            raise RunDiverged(
                f"training loss became {float(loss.detach().sum())} in experience "
                f"{clock.train_exp_counter + 1}, epoch {clock.train_exp_epochs + 1}, iteration "
                f"{clock.train_epoch_iterations + 1}; lower train.lr or set train.grad_clip"
            )
