"""``LwFPlugin``: Avalanche's Learning without Forgetting, also without task labels."""

from __future__ import annotations

import copy

from avalanche.training.plugins import LwFPlugin as _AvalancheLwFPlugin
from avalanche.training.regularization import LearningWithoutForgetting


class _TaskAgnosticLwF(LearningWithoutForgetting):
    """``LearningWithoutForgetting`` whose bookkeeping works on any classification dataset.

    Why: Avalanche 0.6's ``post_adapt`` reads ``dataset.task_set``, which only its task-aware
    dataset classes have (a ``ClassificationDataset`` with task labels lacks it), so LwF raises
    ``AttributeError``. Here the classes seen per task come from the ``targets`` and
    ``targets_task_labels`` attributes directly (task 0 when a dataset has no task labels, the
    key Avalanche's single-head distillation uses).
    """

    def post_adapt(self, agent, exp):
        self.expcount += 1
        self.prev_model = copy.deepcopy(agent.model)
        targets = list(exp.dataset.targets)
        tasks = getattr(exp.dataset, "targets_task_labels", None)
        tasks = list(tasks) if tasks is not None else [0] * len(targets)
        for task, target in zip(tasks, targets, strict=True):
            self.prev_classes_by_task[int(task)].add(int(target))


class LwFPlugin(_AvalancheLwFPlugin):
    """Avalanche's ``LwFPlugin`` (distillation from the model after the previous experience),
    usable in every scenario. :param alpha: weight of the distillation loss;
    :param temperature: softmax temperature."""

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0):
        super().__init__(alpha=alpha, temperature=temperature)
        self.lwf = _TaskAgnosticLwF(alpha, temperature)
