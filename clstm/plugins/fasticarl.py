"""FastICARL (Kwon et al., "FastICARL: fast incremental classifier and representation learning
with efficient budget allocation in audio sensing applications", Interspeech 2021; TSCIL's
``agents/fast_icarl.py``) on recurrent models: replay from exemplars closest to their class mean,
a binary cross-entropy loss on one-hot targets, and a nearest-class-mean (NCM) classifier.

- **Exemplars** (:func:`closest_to_mean`): when an experience ends, each of its classes keeps the
  sequences whose encoder features (unnormalised, as TSCIL) are nearest the class's mean feature,
  nearest first, up to its share of ``mem_size``; later shares shrink by dropping the farthest
  (:class:`clstm.plugins.herding.ExemplarBuffer`). TSCIL finds them with a max-heap; sorting
  the distances gives the same order. FastICARL's quantisation of the stored samples is not in
  TSCIL's code, nor here.
- **Loss** (:class:`OneHotBCE`): binary cross-entropy with logits against one-hot targets,
  averaged over every output unit of every sequence (TSCIL's ``criterion='BCE'``), on the
  training batch with the memory's sequences mixed in.
- **Classifier** (:class:`NCMHead`): in eval mode the model answers with the class whose mean
  exemplar feature is nearest, after L2-normalising both (TSCIL's ``base.py``): the scores are
  the negated distances, and classes without exemplars are masked. The means are recomputed from
  the memory with the current model at the end of every experience. In training mode the head is
  the linear one, which the loss trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clstm.plugins.herding import ExemplarBuffer, sequence_features
from clstm.plugins.replay import QuietReplayPlugin

#: the score of a class the NCM classifier has no mean for (as clstm's multi-task masking)
MASKED = -1e9


def closest_to_mean(features: torch.Tensor, k: int) -> torch.Tensor:
    """The indices of the ``k`` rows of ``features`` nearest their mean (Euclidean), nearest
    first (ties: the lower index)."""
    distances = (features - features.mean(dim=0)).pow(2).sum(dim=1)
    return torch.argsort(distances, stable=True)[:k]


class OneHotBCE(nn.Module):
    """``BCEWithLogits(logits, one_hot(y))``, the mean over sequences and output units."""

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target)


class NCMHead(nn.Module):
    """The wrapped head in training mode; in eval mode, once class means are set, the negated
    distance from the normalised feature to each class's normalised mean."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head
        self.register_buffer("means", torch.zeros(0, 0))  # (classes, d); a row per class id
        self.register_buffer("known", torch.zeros(0, dtype=torch.bool))  # classes with a mean

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.head(features)
        if self.training or not bool(self.known.any()):
            return out
        distances = torch.cdist(F.normalize(features, dim=1), F.normalize(self.means, dim=1))
        scores = torch.full_like(out, MASKED)
        width = min(out.shape[1], len(self.known))
        scores[:, :width] = torch.where(self.known[:width], -distances[:, :width], MASKED)
        return scores

    def set_means(self, means: dict[int, torch.Tensor]) -> None:
        """Class id -> mean feature, replacing the previous means."""
        size = max(means) + 1
        rows = torch.zeros(size, next(iter(means.values())).shape[0])
        known = torch.zeros(size, dtype=torch.bool)
        for c, mean in means.items():
            rows[c], known[c] = mean, True
        device = self.known.device
        self.means, self.known = rows.to(device), known.to(device)


class FastICARLPlugin(QuietReplayPlugin):
    """Replay from :func:`closest_to_mean` exemplars; after each experience's memory update, the
    model's :class:`NCMHead` gets the class means of the memory (module docstring)."""

    def __init__(self, mem_size: int, batch_size_mem: int | None = None):
        super().__init__(
            mem_size=mem_size,
            batch_size_mem=batch_size_mem,
            storage_policy=ExemplarBuffer(mem_size, closest_to_mean),
        )

    def after_training_exp(self, strategy, **kwargs):
        super().after_training_exp(strategy, **kwargs)  # the memory
        memory = self.storage_policy.buffer
        features = sequence_features(strategy.model, memory.eval(), strategy.eval_mb_size,
                                     strategy.device)  # fmt: skip
        by_class = memory.targets.val_to_idx  # class -> indices into the memory
        means = {int(c): features[torch.as_tensor(i)].mean(dim=0) for c, i in by_class.items()}
        strategy.model.head.set_means(means)
