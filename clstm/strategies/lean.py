"""A lean training and evaluation iteration for Avalanche strategies; the plugins still compose.

Why: Avalanche 0.6's ``SGDUpdate.training_epoch`` fires eight callbacks per iteration through
``trigger_plugins``, which asks *every* plugin ``hasattr`` / ``getattr`` for each callback and
calls it, though most plugins implement two or three callbacks and the rest are the base class's
no-ops (a clstm run has about nine plugins: ~70 attribute lookups and ~60 empty calls per
iteration). :class:`LeanIteration` resolves, once per epoch, which plugins implement each
callback, and calls exactly those, in the same order, with the same arguments, at the same
points of the loop; everything else about the loop is Avalanche's. A strategy whose class
overrides a callback trigger (e.g. DER's ``_before_forward``, which draws its memory batch)
keeps that override: it is called as Avalanche would.

A plugin *implements* a callback when its class (or the instance) defines it other than as the
no-op of Avalanche's plugin base classes (``avalanche.core``: each callback is ``pass`` there).
Plugins that answer every attribute (Avalanche's ``EvaluationPlugin`` builds forwarding closures
in ``__getattribute__``) are always called; a plugin may instead say which callbacks it needs
with ``listens(callback) -> bool`` (clstm's :class:`~clstm.plugins.evaluation.LeanEvaluationPlugin`
does). The resolution is redone at the start of every epoch, so plugins added between epochs are
seen; a plugin added *during* an epoch is called from the next one.

Three more things Avalanche's loop does per iteration are resolved once per epoch where the
strategy keeps the template's own method (a strategy overriding one keeps its override):

- the loss: Avalanche starts each iteration's loss as ``zeros(1)`` and adds the criterion in
  place, so that ``before_forward`` / ``after_forward`` plugins can add terms before it exists;
  that costs ~30 µs per iteration on a CPU (the allocation, the in-place add and its node in the
  backward pass). When no plugin listens to those two callbacks, nobody can add to or read the
  empty loss, and the loss is the criterion's output itself: the same value and gradients, of
  shape ``[]`` where Avalanche's has shape ``[1]``. Later plugins add their terms as usual
  (``strategy.loss += penalty``).
- the forward pass: Avalanche asks the experience for task labels and the model whether it is
  multi-task on every batch; both are fixed for an epoch.
- moving the batch to the device: skipped when the batches are cut from tensors already there
  (:class:`clstm.data.batches.SampledBatches`), where each ``.to`` would return its input.
"""

from __future__ import annotations

import functools
from typing import Any

from avalanche.models.utils import is_multi_task_module
from avalanche.training import AGEM, GEM, MAS, Cumulative, Naive
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base_sgd import BaseSGDTemplate
from avalanche.training.templates.problem_type.supervised_problem import SupervisedProblem

#: the module of Avalanche's plugin base classes, whose callbacks all do nothing
_AVALANCHE_BASES = "avalanche.core"
TRAIN_CALLBACKS = (
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
)
EVAL_CALLBACKS = (
    "before_eval_iteration",
    "before_eval_forward",
    "after_eval_forward",
    "after_eval_iteration",
)


def implements(plugin: Any, callback: str) -> bool:
    """Whether calling ``plugin``'s ``callback`` can do anything (see the module docstring)."""
    listens = getattr(type(plugin), "listens", None)
    if listens is not None:
        return bool(listens(plugin, callback))
    if type(plugin).__getattribute__ is not object.__getattribute__:
        return hasattr(plugin, callback)  # answers every attribute: call it as Avalanche does
    own = getattr(plugin, "__dict__", {})
    if callback in own:
        return callable(own[callback])  # set on the instance
    owner = next((c for c in type(plugin).__mro__ if callback in vars(c)), None)
    # Avalanche's plugin base classes (BasePlugin, BaseSGDPlugin, SupervisedPlugin, ...) define
    # every callback as ``pass``, each class its own copy
    return owner is not None and owner.__module__ != _AVALANCHE_BASES


def _caller(strategy, callback: str):
    """A function firing ``callback`` exactly as the template's ``_<callback>`` would."""
    trigger = "_" + callback
    if getattr(type(strategy), trigger) is not getattr(SupervisedTemplate, trigger):
        return getattr(strategy, trigger)  # the strategy adds work of its own (DER's memory)
    methods = [getattr(p, callback) for p in strategy.plugins if implements(p, callback)]
    if not methods:
        return _nothing
    if len(methods) == 1:
        return functools.partial(methods[0], strategy)  # a call in C, no Python frame of its own

    def fire(**kwargs):
        for method in methods:
            method(strategy, **kwargs)

    return fire


def _nothing(**kwargs) -> None:
    return None


def _template(strategy, name: str) -> bool:
    """Whether ``strategy`` uses the template's own ``name`` (no override, on its class or on
    the instance)."""
    template = SupervisedProblem if name in vars(SupervisedProblem) else BaseSGDTemplate
    return name not in vars(strategy) and getattr(type(strategy), name) is vars(template)[name]


def _forward(strategy):
    """``strategy.forward`` as a function of no arguments, its checks made once."""
    if not _template(strategy, "forward"):
        return strategy.forward
    # SupervisedProblem.forward: task labels go to multi-task models when the experience has them
    tasks = hasattr(strategy.experience, "task_labels") and is_multi_task_module(strategy.model)
    if gathers_steps(strategy):
        from clstm.targets import carried_steps

        b, model = strategy, strategy.model
        if tasks:
            return lambda: model(b.mbatch[0], b.mbatch[-1], steps=carried_steps(b.mbatch[1]))
        return lambda: model(b.mbatch[0], steps=carried_steps(b.mbatch[1]))
    if tasks:
        return lambda: strategy.model(strategy.mbatch[0], strategy.mbatch[-1])
    return lambda: strategy.model(strategy.mbatch[0])


def gathers_steps(strategy) -> bool:
    """Whether the loop asks a per-step model for its outputs at the target steps alone.

    A per-step model (``gathers_steps``: :class:`clstm.models.heads.SequenceClassifier` and
    :class:`clstm.models.multitask.FixedTaskHeads` on a per-step encoder) then applies its
    output layer and heads only at the steps that carry a target, and its outputs are zeros at
    the others: the loss, the scores and every clstm plugin read the target steps alone, so
    nothing changes but the time (on the Copy Task the Elman output layer is half the model's
    work, at every step). A plugin that reads the outputs at steps without a target says so
    with a true ``needs_every_step_output`` (LwF distils at every real step); the loop then
    computes every step's output, as do the model's other callers (DER's stored outputs, EWC's
    Fisher, ...), and a model whose dropout is active in training.
    """
    if not getattr(strategy.model, "gathers_steps", False):
        return False
    return not any(getattr(p, "needs_every_step_output", False) for p in strategy.plugins)


def _unpack(strategy):
    """``strategy._unpack_minibatch``, or nothing where every batch is already on the device."""
    from clstm.data.batches import SampledBatches

    loader = strategy.dataloader
    if (
        _template(strategy, "_unpack_minibatch")
        and isinstance(loader, SampledBatches)
        and not loader.pin_memory
        and loader.dataset.devices() == {strategy.device}
    ):
        return _nothing  # SampledBatches yields lists of tensors; .to(device) would return them
    return strategy._unpack_minibatch


def _direct_loss(strategy, fire: dict) -> bool:
    """Whether the loss can be the criterion's output itself (see the module docstring)."""
    return (
        fire["before_forward"] is _nothing
        and fire["after_forward"] is _nothing
        and _template(strategy, "_make_empty_loss")
    )


def _template_loop(name: str):
    """Avalanche's own ``training_epoch`` / ``eval_epoch`` (what LeanIteration stands in for)."""
    from avalanche.training.templates.update_type.sgd_update import SGDUpdate

    return vars(SGDUpdate).get(name) or vars(BaseSGDTemplate)[name]


class LeanIteration:
    """Mixin (put it first among the bases) replacing Avalanche's training and evaluation epoch
    loops by the same loops with the callbacks resolved once per epoch."""

    def __init_subclass__(cls, replaces: tuple[str, ...] = (), **kwargs):
        # Only Avalanche's own loops may be replaced: a strategy with a loop of its own (DER's
        # hard-coded loss) would silently lose it, unless the subclass says it replaces it.
        super().__init_subclass__(**kwargs)
        rest = cls.__mro__[cls.__mro__.index(LeanIteration) + 1 :]
        for name in set(("training_epoch", "eval_epoch")) - set(replaces):
            owner = next((c for c in rest if name in vars(c)), None)
            if owner is not None and owner.__dict__[name] is not _template_loop(name):
                raise TypeError(
                    f"{cls.__name__}: {owner.__name__} has its own {name}; LeanIteration would "
                    "replace it"
                )

    def training_epoch(self, **kwargs):
        """Avalanche's ``SGDUpdate.training_epoch``, callbacks resolved once per epoch."""
        fire = {c: _caller(self, c) for c in TRAIN_CALLBACKS}
        before_iteration, after_iteration = (
            fire["before_training_iteration"],
            fire["after_training_iteration"],
        )
        before_forward, after_forward = fire["before_forward"], fire["after_forward"]
        before_backward, after_backward = fire["before_backward"], fire["after_backward"]
        before_update, after_update = fire["before_update"], fire["after_update"]
        unpack, forward, direct = _unpack(self), _forward(self), _direct_loss(self, fire)
        for batch in self.dataloader:
            self.mbatch = batch
            if self._stop_training:
                break
            unpack()
            before_iteration(**kwargs)
            self.optimizer.zero_grad()
            if direct:  # nobody listens before the criterion: the loss is its output
                self.mb_output = forward()
                self.loss = self.criterion()
                # the task loss as computed, unchanged while loss._version is (TorchSIPlugin)
                self.task_loss = (self.loss, self.loss._version)
            else:
                self.task_loss = None
                self.loss = self._make_empty_loss()
                before_forward(**kwargs)
                self.mb_output = forward()
                after_forward(**kwargs)
                self.loss += self.criterion()
            before_backward(**kwargs)
            self.backward()
            after_backward(**kwargs)
            before_update(**kwargs)
            self.optimizer_step()
            after_update(**kwargs)
            after_iteration(**kwargs)

    def eval_epoch(self, **kwargs):
        """Avalanche's ``SGDUpdate.eval_epoch``, callbacks resolved once per evaluation."""
        fire = {c: _caller(self, c) for c in EVAL_CALLBACKS}
        before_iteration, after_iteration = (
            fire["before_eval_iteration"],
            fire["after_eval_iteration"],
        )
        before_forward, after_forward = fire["before_eval_forward"], fire["after_eval_forward"]
        unpack, forward = _unpack(self), _forward(self)
        for batch in self.dataloader:
            self.mbatch = batch
            unpack()
            before_iteration(**kwargs)
            before_forward(**kwargs)
            self.mb_output = forward()
            after_forward(**kwargs)
            self.loss = self.criterion()
            after_iteration(**kwargs)


# The Avalanche strategies clstm builds, with the lean loops. Defined here (not made on the fly)
# so that checkpoints pickle them by reference.
class LeanNaive(LeanIteration, Naive):
    """Avalanche's ``Naive`` with :class:`LeanIteration`'s loops."""


class LeanCumulative(LeanIteration, Cumulative):
    """Avalanche's ``Cumulative`` with :class:`LeanIteration`'s loops."""


class LeanMAS(LeanIteration, MAS):
    """Avalanche's ``MAS`` with :class:`LeanIteration`'s loops."""


class LeanGEM(LeanIteration, GEM):
    """Avalanche's ``GEM`` with :class:`LeanIteration`'s loops."""


class LeanAGEM(LeanIteration, AGEM):
    """Avalanche's ``AGEM`` with :class:`LeanIteration`'s loops."""
