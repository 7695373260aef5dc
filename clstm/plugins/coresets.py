"""``CoresetDistillationPlugin``: replay of a small random coreset per experience, trained to
reproduce the previous model's outputs on it (distillation), in a batch of its own.

This is the replay baseline of Ehret et al. 2021 ("Continual learning in recurrent neural
networks", ICLR; repository ``mariacer/cl_in_rnns``: ``update_coresets`` in
``sequential/train_utils_sequential.py``, ``replay_samples`` and ``get_soft_targets`` in
``sequential/replay_utils.py``, the distillation loss in ``sequential/copy/train_utils_copy.py``).
It differs from Avalanche's experience replay (``strategy.name: replay``) in three ways:

- the stored sequences are trained to the *previous model's outputs* (soft targets), not to
  their labels: the model after the latest experience is the teacher of every coreset;
- they come as a batch of their own, ``batch_size_mem`` sequences split evenly over the earlier
  experiences (the remainder to a random few), each experience's share drawn with replacement
  from its coreset and run through its own head;
- the distillation term is weighted by ``alpha`` (their ``--replay_distill_reg``).

After experience ``k`` is trained, ``coreset_size`` of its training sequences are drawn at random
(without replacement) and kept, and the outputs of the model as it is then are stored for every
coreset (earlier ones too): the teacher's outputs do not change while the next experience is
trained, so they are computed once rather than at every iteration (same values, one forward pass
less per iteration). The term for experience ``e``'s share is the target kind's
:meth:`~clstm.targets.TargetKind.distill` at temperature ``T`` times ``T^2`` (Hinton et al. 2015;
no ``T`` for regression), read where the stored targets are (a per-step target's steps); the term
added to the loss is ``alpha`` times the sum over the earlier experiences of each share's mean.
For classes and bits the term is a cross-entropy against soft targets, so its value includes the
teacher's own entropy, a constant without gradient: a run's training loss reads higher than its
task loss by that much (the Copy Task run with ``alpha`` 10 read about 43 per sequence).
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models.utils import avalanche_forward

from clstm.plugins.der import stored_outputs
from clstm.targets import kind_of, target_steps


def shares(total: int, groups: int, order: torch.Tensor) -> list[int]:
    """``total`` split over ``groups`` as evenly as possible, the remainder going one each to
    the groups first in ``order`` (a permutation of ``range(groups)``)."""
    counts = [total // groups] * groups
    for g in order[: total % groups].tolist():
        counts[g] += 1
    return counts


def distillation_term(out, soft, y, temperature: float) -> torch.Tensor:
    """The distillation term of one share: ``out`` the model's outputs, ``soft`` the teacher's
    (per-step outputs padded to the samples' steps), ``y`` the samples' targets (which steps
    count)."""
    kind = kind_of(y)
    steps = None
    if kind.per_step:  # per-step outputs: the batch's steps only
        steps, soft = target_steps(y[:, : out.shape[1]]), soft[:, : out.shape[1]]
    term = kind.distill(out, soft, steps, temperature)
    return term * temperature**2 if kind.tempered else term


class CoresetDistillationPlugin(SupervisedPlugin):
    """Coreset replay with distillation (see the module docstring).

    :param coreset_size: sequences kept per experience.
    :param batch_size_mem: replayed sequences per iteration, over all earlier experiences
        (``None``: the training batch size).
    :param alpha: weight of the distillation term.
    :param temperature: distillation temperature.
    """

    def __init__(
        self,
        coreset_size: int = 100,
        batch_size_mem: int | None = None,
        alpha: float = 1.0,
        temperature: float = 2.0,
    ):
        super().__init__()
        self.coreset_size = coreset_size
        self.batch_size_mem = batch_size_mem
        self.alpha = alpha
        self.temperature = temperature
        #: per earlier experience: (x, y, task labels, the teacher's outputs), on the device
        self.coresets: list[tuple[torch.Tensor, ...]] = []

    def before_backward(self, strategy, **kwargs):
        """Adds ``alpha`` times the distillation term of a replayed batch to the loss."""
        if not self.coresets:
            return
        total = self.batch_size_mem or strategy.train_mb_size
        order = torch.randperm(len(self.coresets))
        term = None
        for (x, y, t, soft), count in zip(
            self.coresets, shares(total, len(self.coresets), order), strict=True
        ):
            if count == 0:
                continue
            drawn = torch.randint(len(x), (count,)).to(x.device)
            out = avalanche_forward(strategy.model, x[drawn], t[drawn])
            share = distillation_term(out, soft[drawn], y[drawn], self.temperature)
            term = share if term is None else term + share
        strategy.loss = strategy.loss + self.alpha * term

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs):
        """Keeps a random coreset of the experience; the model as it is now becomes the teacher
        of every coreset."""
        from torch.utils.data import DataLoader

        data = strategy.experience.dataset.eval()
        chosen = torch.randperm(len(data))[: self.coreset_size].sort().values
        subset = data.subset(chosen.tolist())
        collate = getattr(subset, "collate_fn", None)
        x, y, t = next(iter(DataLoader(subset, batch_size=len(subset), collate_fn=collate)))[:3]
        kept = [(x, y, t) for x, y, t, _ in self.coresets] + [(x, y, t)]
        device = strategy.device
        self.coresets = []
        for x, y, t in kept:
            dataset = torch.utils.data.TensorDataset(x, y, t)
            soft = stored_outputs(dataset, strategy.model, strategy.eval_mb_size, device)
            soft = torch.stack(soft)
            self.coresets.append(tuple(a.to(device) for a in (x, y, t, soft)))
