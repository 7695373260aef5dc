"""``DivergenceGuard``: stop training as soon as the loss is NaN or infinite."""

from __future__ import annotations

import math

import torch
from avalanche.training.plugins import SupervisedPlugin

#: iterations between two checks on a GPU (each check waits for the GPU: a host sync)
CHECK_EVERY_ON_GPU = 32


class RunDiverged(RuntimeError):
    """Training produced a non-finite loss; the message says where."""


class DivergenceGuard(SupervisedPlugin):
    """Raises :class:`RunDiverged` when a training loss is NaN or infinite; the weights never
    keep an update made from a non-finite loss.

    On the CPU (``check_every`` 1, the default there) the loss is checked after every backward
    pass, before the update, so no update is made from it: reading a CPU float costs nothing.
    After the backward pass, so the loss checked is the one back-propagated, with every term
    that plugins add before it (penalties, distillation, replaced losses). On a GPU reading the
    loss every step would wait for the GPU every step, so by default the check is accumulated on
    the device and read every :data:`CHECK_EVERY_ON_GPU` iterations and at the end of every
    epoch; the weights are copied (on the device) at every check that passes, and when a check
    fails they are restored to that copy - the weights before the first non-finite loss - before
    the error is raised. Either way the run ends with ``status: diverged`` and everything
    measured until then (no evaluation follows the error, so the numbers are the same).
    """

    def __init__(self, check_every: int | None = None):
        super().__init__()
        if check_every is not None and check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.check_every = check_every
        self._bad: torch.Tensor | None = None  # accumulated "some loss was not finite"
        self._since = 0  # iterations since the last check
        self._first = 0  # the iteration (of the epoch) after the last passed check
        self._saved: list[torch.Tensor] | None = None  # the weights at the last passed check
        self._period = 1  # iterations between checks, resolved once per epoch (_every)

    def _every(self, strategy) -> int:
        if self.check_every is not None:
            return self.check_every
        return 1 if strategy.device.type == "cpu" else CHECK_EVERY_ON_GPU

    def before_training_epoch(self, strategy, **kwargs):
        """Runs before each training epoch: the weights now are the last good ones."""
        self._bad, self._since, self._first = None, 0, 0
        self._period = self._every(strategy)
        if self._period > 1:
            self._save(strategy)

    def after_backward(self, strategy, **kwargs):
        """Runs after ``loss.backward()``, before the optimizer step."""
        loss = strategy.loss
        if self._period > 1:  # accumulated on the device: no host sync here
            bad = ~torch.isfinite(loss.detach()).all()
            self._bad = bad if self._bad is None else self._bad | bad
            return
        if loss.numel() == 1 and loss.device.type == "cpu":  # a float read costs nothing here
            finite = math.isfinite(loss.item())
        else:
            finite = bool(torch.isfinite(loss).all())
        if not finite:
            clock = strategy.clock
            raise RunDiverged(
                f"training loss became {float(loss.detach().sum())} in experience "
                f"{clock.train_exp_counter + 1}, epoch {clock.train_exp_epochs + 1}, iteration "
                f"{clock.train_epoch_iterations + 1}; lower train.lr or set train.grad_clip"
            )

    def after_update(self, strategy, **kwargs):
        """Runs after each optimizer step: every ``check_every`` iterations, the check."""
        if self._period > 1:
            self._since += 1
            if self._since >= self._period:
                self._check(strategy)

    def after_training_epoch(self, strategy, **kwargs):
        """Runs after each training epoch: the iterations since the last check are checked."""
        if self._period > 1 and self._since:
            self._check(strategy)

    def _save(self, strategy) -> None:
        weights = [p.detach() for p in strategy.model.parameters()]
        saved = self._saved
        if saved is None or [s.shape for s in saved] != [w.shape for w in weights]:
            self._saved = [w.clone() for w in weights]
        else:
            torch._foreach_copy_(self._saved, weights)

    def _check(self, strategy) -> None:
        first, last = self._first + 1, self._first + self._since
        self._first, self._since = last, 0
        if self._bad is None or not bool(self._bad):  # the one host sync per check
            self._bad = None
            self._save(strategy)
            return
        with torch.no_grad():
            torch._foreach_copy_([p for p in strategy.model.parameters()], self._saved)
        clock = strategy.clock
        raise RunDiverged(
            f"training loss became non-finite in experience {clock.train_exp_counter + 1}, epoch "
            f"{clock.train_exp_epochs + 1}, between iterations {first} and {last} (checked every "
            f"{self._period} iterations; the weights are restored to iteration "
            f"{first - 1}); lower train.lr or set train.grad_clip"
        )

    def __getstate__(self):  # checkpoints do not carry the copy of the weights
        return {**self.__dict__, "_bad": None, "_saved": None}
