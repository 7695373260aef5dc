"""``LSTMPlugin``: what a recurrent model needs at experience boundaries, in any strategy."""

from __future__ import annotations

import math
from functools import partial

import torch
from avalanche.training.plugins import LRSchedulerPlugin, SupervisedPlugin
from torch.optim.lr_scheduler import LambdaLR

LR_SCHEDULES = ("exponential", "cosine", "step", "none")
OPTIMIZER_STATES = ("reset", "keep")


def lr_factor(
    schedule: str, epoch: int, epochs: int, *, step_size: int = 2, gamma: float = 0.5
) -> float:
    """The factor ``lr / lr0`` in epoch ``epoch`` (0-based) of an experience of ``epochs`` epochs.

    - ``exponential``: ``exp(-epoch / epochs)``
    - ``cosine``: ``(1 + cos(pi * epoch / epochs)) / 2``
    - ``step``: ``gamma ** floor(epoch / step_size)``
    - ``none``: ``1``
    """
    if schedule == "exponential":
        return math.exp(-epoch / epochs)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        return gamma ** (epoch // step_size)
    if schedule == "none":
        return 1.0
    raise ValueError(f"unknown lr_schedule '{schedule}'; choose one of {', '.join(LR_SCHEDULES)}")


class LSTMPlugin(SupervisedPlugin):
    """Recurrent-model hygiene at experience boundaries; composes with any Avalanche strategy.

    - **State reset**: before every training experience and every evaluation experience, calls
      ``reset_state()`` on each sub-module that has one (e.g. a stateful
      :class:`clstm.models.RecurrentEncoder`), so no recurrent state leaks across datasets.
    - **Per-experience learning rate**: every experience starts at ``lr0`` (the optimizer's LR when
      training first starts) and decays per epoch by :func:`lr_factor`. Implemented with
      Avalanche's ``LRSchedulerPlugin`` (``reset_lr=True, reset_scheduler=True``) around a torch
      ``LambdaLR``, built on the strategy's optimizer when training starts.
    - **Optimizer state**: ``"reset"`` clears it (e.g. Adam's moments) at the start of every
      training experience; ``"keep"`` carries it over. (Avalanche alone resets it only before the
      first experience.)
    - **Gradient clipping**: the global gradient norm is clipped to ``grad_clip`` just before each
      optimizer step, after every other plugin has modified the gradients; ``None`` disables it.

    :param epochs: ``E`` in the schedules; defaults to the strategy's ``train_epochs``.
    """

    def __init__(
        self,
        *,
        lr_schedule: str = "exponential",
        epochs: int | None = None,
        lr_step_size: int = 2,
        lr_gamma: float = 0.5,
        optimizer_state: str = "reset",
        grad_clip: float | None = 1.0,
    ):
        super().__init__()
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule '{lr_schedule}'; choose one of {', '.join(LR_SCHEDULES)}"
            )
        if optimizer_state not in OPTIMIZER_STATES:
            raise ValueError(
                f"optimizer_state must be one of {', '.join(OPTIMIZER_STATES)}, "
                f"got '{optimizer_state}'"
            )
        if grad_clip is not None and grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.lr_schedule = lr_schedule
        self.epochs = epochs
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.optimizer_state = optimizer_state
        self.grad_clip = grad_clip
        self.scheduler_plugin: LRSchedulerPlugin | None = None

    # -- learning rate ------------------------------------------------------------------------

    def _scheduler(self, strategy) -> LRSchedulerPlugin:
        """The wrapped Avalanche scheduler plugin, (re)built if the strategy's optimizer changed."""
        current = self.scheduler_plugin
        if current is None or current.scheduler.optimizer is not strategy.optimizer:
            factor = partial(
                lr_factor,
                self.lr_schedule,
                epochs=self.epochs or strategy.train_epochs,
                step_size=self.lr_step_size,
                gamma=self.lr_gamma,
            )
            self.scheduler_plugin = LRSchedulerPlugin(
                LambdaLR(strategy.optimizer, factor),  # a partial: picklable (checkpoints)
                reset_scheduler=True,
                reset_lr=True,
                step_granularity="epoch",
            )
        return self.scheduler_plugin

    def before_training(self, strategy, **kwargs):
        """Runs when ``strategy.train`` starts: builds the LR schedule on the optimizer."""
        self._scheduler(strategy).before_training(strategy, **kwargs)

    def after_training(self, strategy, **kwargs):
        """Runs when ``strategy.train`` ends."""
        self._scheduler(strategy).after_training(strategy, **kwargs)

    def after_training_epoch(self, strategy, **kwargs):
        """Runs after each training epoch: decays the LR for the next epoch."""
        self._scheduler(strategy).after_training_epoch(strategy, **kwargs)

    def after_training_exp(self, strategy, **kwargs):
        """Runs after each training experience: restores ``lr0`` and restarts the schedule."""
        self._scheduler(strategy).after_training_exp(strategy, **kwargs)

    # -- experience boundaries ----------------------------------------------------------------

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience (after Avalanche has set up the optimizer)."""
        reset_recurrent_state(strategy.model)
        if self.optimizer_state == "reset":
            strategy.optimizer.state.clear()
        self._scheduler(strategy).before_training_exp(strategy, **kwargs)

    def before_eval_exp(self, strategy, **kwargs):
        """Runs before each evaluation experience."""
        reset_recurrent_state(strategy.model)

    # -- gradients ----------------------------------------------------------------------------

    def before_update(self, strategy, **kwargs):
        """Runs just before each optimizer step: clips the global gradient norm."""
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(strategy.model.parameters(), self.grad_clip)


def reset_recurrent_state(model: torch.nn.Module) -> None:
    """Call ``reset_state()`` on every sub-module of ``model`` that defines it."""
    for module in model.modules():
        reset = getattr(module, "reset_state", None)
        if callable(reset):
            reset()
