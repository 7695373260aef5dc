"""Herding exemplars (Rebuffi et al., iCaRL, CVPR 2017; the "Herding" baseline of TSCIL, Qiao et
al., KDD 2024): replay from a memory whose sequences of each class are chosen, in order, so that
their mean feature stays closest to the class's mean feature.

:class:`HerdingBuffer` is an Avalanche storage policy (for Avalanche's ``ReplayPlugin``). At the
end of each experience, for every class in it, the model's features of that class's sequences
(the recurrent encoder's output at each sequence's last real step, L2-normalised as in TSCIL's
``agents/herding.py``) are ordered by iCaRL's herding rule (:func:`herding_order`), and the first
ones, up to the class's share of ``mem_size``, are kept. When later classes arrive, each class's
share shrinks by dropping the end of its order (iCaRL's "reduce exemplar set"): the exemplars are
never re-selected with a later model.

Why not Avalanche's ``ParametricBuffer`` with ``HerdingSelectionStrategy``: that one re-runs the
selection on the kept exemplars with the current model at every resize (not iCaRL's reduction),
takes the features from a forward hook on a named layer without the task labels, and adds a new
hook to the model each time it is built. Here the features come from the model's own encoder.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from avalanche.training.storage_policy import BalancedExemplarsBuffer, ExemplarsBuffer


def herding_order(features: torch.Tensor, k: int) -> torch.Tensor:
    """The indices of ``k`` rows of ``features`` ``(n, d)`` in iCaRL's herding order.

    With ``mu`` the mean of all rows, the ``i``-th exemplar (``i = 1..k``) is the row not chosen yet
    that brings the mean of the chosen ones closest to ``mu``:
    ``p_i = argmin_x || mu - (x + p_1 + ... + p_{i-1}) / i ||`` (iCaRL, Algorithm 4; ties: the
    lowest index). ``k`` is capped at ``n``.
    """
    n = len(features)
    k = min(k, n)
    features = features.double()  # float64: the sums of the chosen rows drift in float32
    mu = features.mean(dim=0)
    total = torch.zeros_like(mu)
    taken = torch.zeros(n, dtype=torch.bool)
    order = torch.empty(k, dtype=torch.long)
    for i in range(k):
        distances = (mu - (total + features) / (i + 1)).pow(2).sum(dim=1)
        distances[taken] = float("inf")
        j = int(distances.argmin())
        order[i], taken[j] = j, True
        total += features[j]
    return order


@torch.no_grad()
def sequence_features(model, dataset, batch_size: int, device) -> torch.Tensor:
    """``(N, d)``: the model's encoder output at each sequence's last real step, for every sample
    of ``dataset`` in order (eval mode; through the sample's task projection in multi-task
    models)."""
    from avalanche.models.utils import is_multi_task_module
    from torch.utils.data import BatchSampler, SequentialSampler

    from clstm.data.batches import loader

    if not hasattr(model, "encoder"):
        raise TypeError(
            f"herding needs clstm's sequence models (an `encoder`); {type(model).__name__} has none"
        )
    was_training = model.training
    model.eval()
    out = []
    batches = BatchSampler(SequentialSampler(range(len(dataset))), batch_size, drop_last=False)
    try:
        for x, _, t, *_ in loader(dataset, batches, pin_memory=False):
            x, t = x.to(device), t.to(device)
            if not is_multi_task_module(model):
                out.append(model.encoder(x).cpu())
                continue
            features = torch.empty(len(x), model.encoder.out_features)
            for task in torch.unique(t).tolist():
                rows = t == task
                features[rows.cpu()] = model.features(x[rows], task).cpu()
            out.append(features)
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


class _OrderedExemplars(ExemplarsBuffer):
    """One group's exemplars, in selection order; shrinking keeps the first ones."""

    def __init__(self, ordered):
        super().__init__(len(ordered))
        self.buffer = ordered

    def resize(self, strategy, new_size: int) -> None:
        self.max_size = new_size
        if new_size < len(self.buffer):
            self.buffer = self.buffer.subset(range(new_size))


def normalized_herding(features: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`herding_order` on the L2-normalised features (TSCIL's ``agents/herding.py``)."""
    return herding_order(F.normalize(features, dim=1), k)


class ExemplarBuffer(BalancedExemplarsBuffer):
    """``mem_size`` sequences, an equal share (to one sequence) per (experience, class) pair seen,
    each share chosen when its experience ends as the first ones of ``order(values, k)`` (the
    class's rows of :meth:`scores`: by default the encoder's features, :func:`sequence_features`),
    and shrunk later by dropping the end of that order.

    A class trained again in a later experience (the domain scenario) gets a group of its own
    there. A class with fewer sequences than its share keeps all of them; the memory then holds
    fewer than ``mem_size``.
    """

    def __init__(self, max_size: int, order):
        super().__init__(max_size, adaptive_size=True)
        self.order = order  # a module-level function (checkpoints pickle it by name)

    def post_adapt(self, agent, exp) -> None:
        data = exp.dataset
        by_class = data.targets.val_to_idx  # class -> indices into the experience's data
        groups = [(exp.current_experience, int(c)) for c in sorted(by_class)]
        lengths = self.get_group_lengths(len(self.buffer_groups) + len(groups))
        if min(lengths, default=1) == 0:
            warnings.warn(
                f"the memory of {self.max_size} sequences is shared by {len(lengths)} (experience, "
                "class) groups: some keep no sequence; raise strategy.mem_size",
                stacklevel=2,
            )
        quota = max(lengths[len(self.buffer_groups) :], default=0)
        values = self.scores(agent, data)
        for e, c in groups:
            indices = torch.as_tensor(by_class[c], dtype=torch.long)
            chosen = indices[self.order(values[indices], quota)]
            self.buffer_groups[(e, c)] = _OrderedExemplars(data.subset(chosen.tolist()))
        for length, group in zip(lengths, self.buffer_groups.values(), strict=True):
            group.resize(agent, length)

    def scores(self, agent, data) -> torch.Tensor:
        """What ``order`` ranks, one row per sequence of ``data``: the encoder's features."""
        return sequence_features(agent.model, data.eval(), agent.eval_mb_size, agent.device)


class HerdingBuffer(ExemplarBuffer):
    """An :class:`ExemplarBuffer` whose shares are chosen by herding (module docstring)."""

    def __init__(self, max_size: int):
        super().__init__(max_size, normalized_herding)
