"""CLOPS (Kiyasseh, Zhu & Clifton, "A clinical deep learning framework for continually learning
from cardiac signals across diseases, time, modalities, and institutions", Nature Communications
2021; TSCIL's ``agents/clops.py``) on recurrent models: replay whose memory keeps, per class, the
sequences that a learnt importance weight marked as most important.

During an experience every training sequence ``i`` has a weight ``beta_i``, 1 at the start. Each
training batch's loss is

``mean_i(CE_i * beta_i) + lambda_beta * mean_i((beta_i - 1)^2) + CE(memory batch)``

(the memory batch a random draw of ``batch`` sequences from the memory, through a forward pass of
its own, as TSCIL), and after the backward pass each weight of the batch takes a gradient step of
its own, ``beta_i -= beta_lr * d loss / d beta_i``. The weights are recorded after every epoch;
when the experience ends, each class's share of ``mem_size`` goes to its sequences with the
largest area under their weight's curve over the epochs (the trapezoidal rule, TSCIL's
``np.trapz``), largest first, and shrinks later by dropping the smallest
(:class:`clstm.plugins.herding.ExemplarBuffer`).

Not built: CLOPS's uncertainty-based retrieval (Monte-Carlo dropout, BALD), which TSCIL's
experiments turn off (``mc_retrieve: False``; its config calls it "highly time-consuming ...
results are quite poor"): the memory batch is a uniform random draw, as in those experiments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin

from clstm.plugins.herding import ExemplarBuffer

#: the name of the attribute that carries each training sequence's index into the experience
INDEX = "clops_index"


def area_under(history: torch.Tensor) -> torch.Tensor:
    """``(epochs, N)`` -> ``(N,)``: the trapezoidal area under each column (one epoch apart); a
    single epoch's value is its own area."""
    if len(history) == 1:
        return history[0]
    return torch.trapezoid(history, dim=0)


def _by_importance(importance: torch.Tensor, k: int) -> torch.Tensor:
    return torch.argsort(importance, descending=True, stable=True)[:k]


class ImportanceBuffer(ExemplarBuffer):
    """An :class:`ExemplarBuffer` whose shares go to the sequences of largest importance
    (:attr:`importance`, one value per sequence of the experience, set before each update)."""

    def __init__(self, max_size: int):
        super().__init__(max_size, _by_importance)
        self.importance: torch.Tensor | None = None

    def scores(self, agent, data) -> torch.Tensor:
        return self.importance


class CLOPSPlugin(SupervisedPlugin):
    """Importance-weighted training and importance-guided storage (module docstring).

    :param mem_size: sequences in memory over all experiences;
    :param batch_size_mem: memory sequences per iteration (None: the training batch size);
    :param beta_lr: the weights' learning rate (TSCIL's default 1e-4);
    :param lambda_beta: weight of their penalty (TSCIL's default 1).
    """

    def __init__(self, mem_size: int, batch_size_mem: int | None = None, beta_lr: float = 1e-4,
                 lambda_beta: float = 1.0):  # fmt: skip
        super().__init__()
        self.storage_policy = ImportanceBuffer(mem_size)
        self.batch_size_mem, self.beta_lr, self.lambda_beta = batch_size_mem, beta_lr, lambda_beta
        self.beta: torch.Tensor | None = None  # (N,) of the current experience
        self.history: list[torch.Tensor] = []
        self._rows = None  # the current batch's weights (a leaf of the loss)
        self._memory = None  # the memory's stacked batches (the memory is fixed per experience)
        self._index = None  # the current batch's sequence indices

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_rows"], state["_memory"], state["_index"] = None, None, None
        return state

    def after_train_dataset_adaptation(self, strategy, **kwargs):
        from avalanche.benchmarks.utils import make_avalanche_dataset
        from avalanche.benchmarks.utils.data_attribute import TensorDataAttribute

        data = strategy.adapted_dataset
        index = TensorDataAttribute(torch.arange(len(data)), name=INDEX, use_in_getitem=True)
        strategy.adapted_dataset = make_avalanche_dataset(data, data_attributes=[index])

    def before_training_exp(self, strategy, **kwargs):
        from clstm.data.batches import stacked

        self.beta = torch.ones(len(strategy.experience.dataset))
        self.history = []
        memory = self.storage_policy.buffer
        self._memory = (stacked(memory), memory) if len(memory) else None

    def before_training_iteration(self, strategy, **kwargs):
        # the index is the batch's last element, where the task labels are read from: take it
        # off before the forward pass
        self._index = strategy.mbatch[-1].cpu()
        strategy.mbatch = list(strategy.mbatch[:-1])

    def before_backward(self, strategy, **kwargs):
        index = self._index
        rows = self.beta[index].to(strategy.device).requires_grad_(True)
        per_sequence = F.cross_entropy(strategy.mb_output, strategy.mb_y, reduction="none")
        loss = (per_sequence * rows).mean() + self.lambda_beta * (rows - 1).pow(2).mean()
        if self._memory is not None:
            loss = loss + self._memory_loss(strategy)
        strategy.loss, self._rows = loss, (index, rows)

    def _memory_loss(self, strategy) -> torch.Tensor:
        from avalanche.models.utils import avalanche_forward

        batches, memory = self._memory
        size = min(self.batch_size_mem or strategy.train_mb_size, len(memory))
        pick = torch.randperm(len(memory))[:size]
        if batches is not None:
            x, y, t = batches[pick][:3]
        else:
            x, y, t = memory.collate_fn([memory[int(i)] for i in pick])[:3]
        device = strategy.device
        out = avalanche_forward(strategy.model, x.to(device), t.to(device))
        return F.cross_entropy(out, y.to(device))

    def after_backward(self, strategy, **kwargs):
        index, rows = self._rows
        with torch.no_grad():  # each weight's own gradient step
            self.beta[index] -= self.beta_lr * rows.grad.cpu()
        self._rows = None

    def after_training_epoch(self, strategy, **kwargs):
        self.history.append(self.beta.clone())

    def after_training_exp(self, strategy, **kwargs):
        history = torch.stack(self.history) if self.history else self.beta[None]
        self.storage_policy.importance = area_under(history)
        self.storage_policy.post_adapt(strategy, strategy.experience)
