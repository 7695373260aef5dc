"""``SeparateModelsPlugin``: one fresh model per experience, each evaluated with its own model."""

from __future__ import annotations

import copy

import torch
from avalanche.training.plugins import SupervisedPlugin


class SeparateModelsPlugin(SupervisedPlugin):
    """The honest version of "re-initialise the model for every dataset".

    - before each training experience the model's parameters are re-initialised (fresh random
      weights, ``reset_parameters()`` of every layer that has it) and the optimizer state cleared;
    - after it, the trained weights are kept as that experience's model;
    - evaluating experience ``j`` uses experience ``j``'s model if it has been trained, else the
      untrained initial weights (so FWT, BWT and forgetting are 0 by construction).

    Choosing the model by experience at test time uses the experience identity: a
    task-incremental reference (no forgetting, no transfer), not a method. In the class scenario
    model ``j`` answers among the classes of experience ``j`` only.
    """

    def __init__(self):
        super().__init__()
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.initial: dict[str, torch.Tensor] | None = None
        self._held: dict[str, torch.Tensor] | None = None

    def before_training(self, strategy, **kwargs):
        if self.initial is None:
            self.initial = copy.deepcopy(strategy.model.state_dict())

    def before_eval(self, strategy, **kwargs):
        if self.initial is None:  # evaluated before any training: remember the initial weights
            self.initial = copy.deepcopy(strategy.model.state_dict())

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience: a fresh model and optimizer state."""
        if strategy.clock.train_exp_counter > 0:
            for module in strategy.model.modules():
                if module is not strategy.model and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        strategy.optimizer.state.clear()

    def after_training_exp(self, strategy, **kwargs):
        """Runs after each training experience: keeps its model."""
        j = strategy.experience.current_experience
        self.snapshots[j] = copy.deepcopy(strategy.model.state_dict())

    def before_eval_exp(self, strategy, **kwargs):
        """Runs before evaluating experience j: swaps in experience j's model."""
        j = strategy.experience.current_experience
        self._held = copy.deepcopy(strategy.model.state_dict())
        _load_matching(strategy.model, self.snapshots.get(j, self.initial))

    def after_eval_exp(self, strategy, **kwargs):
        """Runs after evaluating an experience: puts the current model back."""
        _load_matching(strategy.model, self._held)
        self._held = None


def _load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a snapshot into a model whose heads may have grown since it was taken.

    Heads and their unit masks grow as tasks and classes arrive. An entry the snapshot lacks (a
    head created later, hence untrained then too) keeps the model's value. An entry the snapshot
    holds smaller along its first dimension (an ``IncrementalClassifier`` over fewer classes) is
    loaded into the leading rows and the rest set to zero: zero weights, and a zero unit mask,
    which masks the classes that model had not seen.
    """
    own = model.state_dict()
    loadable = {}
    for name, value in state.items():
        if name not in own:
            continue
        current = own[name]
        if current.shape == value.shape:
            loadable[name] = value
        elif current.dim() == value.dim() and current.shape[1:] == value.shape[1:]:
            grown = torch.zeros_like(current)
            grown[: value.shape[0]] = value
            loadable[name] = grown
    model.load_state_dict(loadable, strict=False)
