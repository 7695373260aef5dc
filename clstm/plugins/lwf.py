"""``LwFPlugin``: Avalanche's Learning without Forgetting, also without task labels, and for
targets beyond one class per sequence (:mod:`clstm.targets`).

The distillation term is the target kind's (:meth:`clstm.targets.TargetKind.distill`):

- ``sequence``: Avalanche's, ``KL(softmax(prev / T) || softmax(out / T))`` over the classes the
  previous model had seen, mean over sequences;
- ``per_step``: the same KL at every real step of a sequence (the mask channel of ``x``), summed
  over its steps, mean over sequences (as the per-step loss);
- ``per_step_bits``: binary cross-entropy between ``sigmoid(out / T)`` and
  ``sigmoid(prev / T)`` for every bit of every real step, summed per sequence, mean over
  sequences (Ehret et al. 2021's copy-task distillation, without their ``T^2`` factor, as
  Avalanche's LwF has none);
- ``regression``: the mean squared difference between the outputs and the previous model's.

With task heads every earlier task's head is distilled, each on its own outputs.
"""

from __future__ import annotations

import copy

from avalanche.training.plugins import LwFPlugin as _AvalancheLwFPlugin
from avalanche.training.regularization import LearningWithoutForgetting

from clstm.targets import SEQUENCE, kind_of

#: marker of a task whose every output unit is distilled (targets without classes)
ALL_UNITS = frozenset({-1})


class _TaskAgnosticLwF(LearningWithoutForgetting):
    """``LearningWithoutForgetting`` whose bookkeeping works on any classification dataset.

    Why: Avalanche 0.6's ``post_adapt`` reads ``dataset.task_set``, which only its task-aware
    dataset classes have (a ``ClassificationDataset`` with task labels lacks it), so LwF raises
    ``AttributeError``. Here the classes seen per task come from the ``targets`` and
    ``targets_task_labels`` attributes directly (task 0 when a dataset has no task labels, the
    key Avalanche's single-head distillation uses).
    """

    kind = SEQUENCE  # the target kind of the current batch (set by LwFPlugin)
    steps = None  # (B, T') real steps of the current batch, for per-step kinds

    def post_adapt(self, agent, exp):
        self.expcount += 1
        self.prev_model = copy.deepcopy(agent.model)
        tasks = getattr(exp.dataset, "targets_task_labels", None)
        if not hasattr(exp.dataset, "targets"):  # no classes: every output unit is distilled
            for task in set(tasks) if tasks is not None else {0}:
                self.prev_classes_by_task[int(task)] = ALL_UNITS
            return
        targets = list(exp.dataset.targets)
        tasks = list(tasks) if tasks is not None else [0] * len(targets)
        for task, target in zip(tasks, targets, strict=True):
            self.prev_classes_by_task[int(task)].add(int(target))

    def _distillation_loss(self, out, prev_out, active_units):
        if self.kind.classes:  # Avalanche's, over the classes each task has seen
            return super()._distillation_loss(out, prev_out, active_units)
        steps = self.steps[:, : out.shape[1]] if self.steps is not None else None
        return self.kind.distill(out, prev_out, steps, self.temperature)


class LwFPlugin(_AvalancheLwFPlugin):
    """Avalanche's ``LwFPlugin`` (distillation from the model after the previous experience),
    usable in every scenario. :param alpha: weight of the distillation loss;
    :param temperature: softmax temperature."""

    #: it distils the outputs at every real step, targets or not (clstm.strategies.lean)
    needs_every_step_output = True

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0):
        super().__init__(alpha=alpha, temperature=temperature)
        self.lwf = _TaskAgnosticLwF(alpha, temperature)

    def before_backward(self, strategy, **kwargs):
        self.lwf.kind = kind_of(strategy.mb_y)
        self.lwf.steps = strategy.mb_x[..., -1] if self.lwf.kind.per_step else None
        super().before_backward(strategy, **kwargs)
