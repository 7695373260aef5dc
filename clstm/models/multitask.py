"""The task-incremental model, built on Avalanche's multi-task modules. Imports Avalanche."""

from __future__ import annotations

import torch
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import nn

from clstm.models.encoder import RecurrentEncoder, dropped, scattered
from clstm.models.heads import selected

#: Logit given to the classes another task's head has and this one lacks.
PAD_LOGIT = -1e9


class _ClassesAsList:
    """An experience seen through a proxy whose ``classes_in_this_experience`` is a sorted list."""

    def __init__(self, experience):
        self._experience = experience

    def __getattr__(self, name):
        value = getattr(self._experience, name)
        return sorted(value) if name == "classes_in_this_experience" else value


class TaskHeads(MultiHeadClassifier):
    """Avalanche's ``MultiHeadClassifier``, fixed for experiences whose classes are a set.

    Why: in Avalanche 0.6, ``MultiHeadClassifier.adaptation`` indexes a tensor with
    ``experience.classes_in_this_experience``, which benchmarks built with
    ``with_classes_timeline`` (e.g. ``task_incremental_benchmark``) give as a ``set``: torch raises
    ``IndexError ... (got set)``. Its sibling ``IncrementalClassifier`` converts to a list first;
    here the experience is handed over with the classes as a sorted list.
    """

    def adaptation(self, experience):
        super().adaptation(_ClassesAsList(experience))


class _SharedEncoder(MultiTaskModule):
    """A recurrent encoder shared by all tasks, optional per-task input projections, dropout."""

    def __init__(
        self,
        encoder: RecurrentEncoder,
        *,
        adapters: list[nn.Module] | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.encoder = encoder
        self.adapters = nn.ModuleList(adapters) if adapters is not None else None
        self.dropout = nn.Dropout(dropout)

    def features(self, x: torch.Tensor, task_label: int, steps=None) -> torch.Tensor:
        """The encoder's output for a padded batch, through task ``task_label``'s projection
        (at the steps ``steps`` marks alone, when given: :meth:`RecurrentEncoder.forward`)."""
        if self.adapters is not None:
            if not 0 <= task_label < len(self.adapters):
                raise ValueError(f"no input projection for task {task_label}")
            x = self.adapters[task_label](x)
        return dropped(self.dropout, self.encoder(x, steps))


class MultiTaskSequenceClassifier(_SharedEncoder):
    """Shared recurrent encoder, optional per-task input projections, one head per task.

    Heads are Avalanche's ``MultiHeadClassifier`` (created as tasks arrive, unused units masked),
    through :class:`TaskHeads`.

    Why ``forward`` is overridden: Avalanche 0.6's ``MultiTaskModule.forward`` places each task's
    output in a zero-filled ``(B, max classes over tasks)`` tensor. For a task whose head is
    narrower than the widest one, those padding logits are 0, so whenever all of the task's own
    logits are negative, ``argmax`` picks a class the task does not have and accuracy is wrong;
    the padding also enters the softmax of the loss. Here the padding is ``PAD_LOGIT``.
    """

    def __init__(
        self,
        encoder: RecurrentEncoder,
        *,
        adapters: list[nn.Module] | None = None,
        dropout: float = 0.0,
    ):
        super().__init__(encoder, adapters=adapters, dropout=dropout)
        self.heads = TaskHeads(encoder.out_features, initial_out_features=2)

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        """Logits of task ``task_label``'s own head for a padded batch ``(B, T, F + 1)``."""
        return self.heads.forward_single_task(self.features(x, task_label), task_label)

    def forward(self, x: torch.Tensor, task_labels) -> torch.Tensor:
        if task_labels is None:
            return self.forward_all_tasks(x)
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels)
        parts = [
            (rows, self.forward_single_task(x[rows], task))  # (b, C_task)
            for task in torch.unique(task_labels).tolist()
            for rows in [task_labels == task]
        ]
        width = max(self.max_class_label, *(logits.shape[1] for _, logits in parts))
        out = torch.full((x.shape[0], width), PAD_LOGIT, device=x.device, dtype=parts[0][1].dtype)
        for rows, logits in parts:
            out[rows, : logits.shape[1]] = logits
        return out


class FixedTaskHeads(_SharedEncoder):
    """Shared recurrent encoder, optional per-task input projections, one linear head per task:
    outputs ``(B, T', n_outputs)`` with a per-step encoder, ``(B, n_outputs)`` otherwise.

    For targets other than one class per sequence (:mod:`clstm.targets`). The heads are made up
    front, one per task of the stream (all of one width): Avalanche's ``MultiHeadClassifier``
    sizes its heads from the classes of an experience's targets, which these targets do not
    have. A head's parameters receive no gradient before its task arrives. Rows of different
    tasks are run separately; per-step outputs are padded to the batch's longest sequence
    (steps there carry no target).

    With ``steps`` (a per-step encoder; a ``(B, T)`` bool mask of the steps that carry a target)
    the encoder's output layer and the heads are applied at those steps alone, and the outputs
    are ``(B, T, n_outputs)``, zeros at the other steps (see
    :meth:`clstm.models.heads.SequenceClassifier.forward`).
    """

    def __init__(
        self,
        encoder: RecurrentEncoder,
        n_outputs: int,
        n_tasks: int,
        *,
        adapters: list[nn.Module] | None = None,
        dropout: float = 0.0,
    ):
        super().__init__(encoder, adapters=adapters, dropout=dropout)
        self.heads = nn.ModuleList(
            nn.Linear(encoder.out_features, n_outputs) for _ in range(n_tasks)
        )

    def adaptation(self, experience) -> None:
        # Why overridden: MultiTaskModule.adaptation reads experience.classes_in_this_experience,
        # which experiences with per-step targets do not have; only the task labels matter here.
        if self.training:
            self.known_train_tasks_labels |= set(experience.task_labels)

    @property
    def gathers_steps(self) -> bool:
        """Whether :meth:`forward` takes ``steps`` (a per-step encoder)."""
        return self.encoder.per_step

    def forward_single_task(self, x: torch.Tensor, task_label: int, steps=None) -> torch.Tensor:
        if not 0 <= task_label < len(self.heads):
            raise ValueError(f"no head for task {task_label} (the stream has {len(self.heads)})")
        steps = selected(self, steps)
        if steps is None:
            return self.heads[task_label](self.features(x, task_label))
        return scattered(self.heads[task_label](self.features(x, task_label, steps)), steps)

    def forward(self, x: torch.Tensor, task_labels, steps=None) -> torch.Tensor:
        if isinstance(task_labels, int):
            return self.forward_single_task(x, task_labels, steps)
        if task_labels is None:  # every known task's head on the whole batch (LwF's teacher)
            return self.forward_all_tasks(x)
        tasks = torch.unique(task_labels).tolist()
        if len(tasks) == 1:
            return self.forward_single_task(x, tasks[0], steps)
        steps = selected(self, steps)
        width = int(x[..., -1].sum(dim=1).max().round()) if steps is None else steps.shape[1]
        out = None
        for task in tasks:
            rows = task_labels == task
            chosen = None if steps is None else steps[rows]
            logits = self.forward_single_task(x[rows], task, chosen)  # (b, T, W) or (b, K)
            if out is None:
                shape = (width, logits.shape[-1]) if logits.dim() == 3 else logits.shape[1:]
                out = logits.new_zeros(x.shape[0], *shape)
            out[rows, : logits.shape[1]] = logits
        return out
