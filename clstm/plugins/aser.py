"""ASER (Shim et al., "Online class-incremental continual learning with adversarial Shapley
value", AAAI 2021; as TSCIL runs it, ``agents/aser.py`` and ``utils/buffer/aser_*.py``) on
recurrent models: a memory whose sequences are retrieved and replaced by their KNN Shapley values
in the encoder's feature space.

**KNN Shapley values** (:func:`knn_shapley`, Jia et al., VLDB 2019, Theorem 1): for an evaluation
sequence of label ``y`` and candidates ``a_1 .. a_N`` sorted by their feature distance to it
(nearest first), ``s(a_N) = 1[y_N = y] / max(N, K)`` and
``s(a_i) = s(a_{i+1}) + (1[y_i = y] - 1[y_{i+1} = y]) / K * min(K, i) / i``: the exact Shapley
value of each candidate in the utility "fraction of the ``K`` nearest candidates with label y".

**Retrieval** (every training iteration, once the memory has seen more than ``mem_size``
sequences; before, a uniform draw): ``n_per_class`` candidates per class are drawn from the
memory, and as many others per class for the cooperative evaluation set; the adversarial one is
the current batch. Each candidate's score is its mean value on the cooperative set minus its
mean value on the current batch (TSCIL's default ``asvm``); the ``batch_size_mem`` best are
replayed, concatenated with the current batch into one batch (one cross-entropy).

**Update** (when an experience ends, one shuffled pass over its sequences in training batches, as
TSCIL's ``er_mode: task``): while the memory has room, sequences are stored as they come. Then,
per batch: the evaluation set is ``n_per_class`` memory sequences per class plus the batch's
sequences of minority classes (a class whose share of the memory is below a threshold drawn
uniformly from ``[0, 1 / classes)``); the candidates are ``n_per_class x classes`` other memory
sequences plus the batch; each candidate's score is its value summed over the evaluation set, and
batch sequences that rank among the memory candidates' number of best replace the memory
candidates that rank below.

The memory is one padded tensor of ``mem_size`` rows (each sequence at its own length, the mask
channel marking it), its labels and task labels: no Python object per sequence. The classes
count for the minority threshold is the classes seen so far (TSCIL: the stream's, known in
advance).
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin

from clstm.data.sequences import pad_item


def knn_shapley(eval_features, eval_y, cand_features, cand_y, k: int) -> torch.Tensor:
    """``(E, N)``: the KNN Shapley value of each candidate for each evaluation sequence (module
    docstring), by Euclidean distance in feature space, ties by candidate order."""
    n = len(cand_features)
    distances = torch.cdist(eval_features, cand_features)  # (E, N)
    order = torch.argsort(distances, dim=1, stable=True)
    same = (cand_y[order] == eval_y[:, None]).to(distances.dtype)  # (E, N), sorted
    following = torch.zeros_like(same)
    following[:, :-1] = same[:, 1:]
    i = torch.arange(1, n + 1, dtype=distances.dtype)
    factor = torch.minimum(i, torch.tensor(float(k))) / (k * i)
    # the farthest candidate: 1[y_N = y] / N (Jia et al., for N >= K; with fewer candidates than
    # K every one counts 1 / K, the Shapley value then; TSCIL's code has 1 / N for both)
    factor[-1] = 1.0 / max(n, k)
    values = ((same - following) * factor).flip(1).cumsum(1).flip(1)
    out = torch.empty_like(values)
    out.scatter_(1, order, values)
    return out


class ASERPlugin(SupervisedPlugin):
    """ASER's memory, retrieval and update (module docstring).

    :param mem_size: sequences in memory;
    :param batch_size_mem: sequences replayed per iteration (None: the training batch size);
    :param k: neighbours of the KNN Shapley value (TSCIL's ``aser_k``, 3);
    :param n_per_class: sequences per class drawn for candidates and evaluation sets
        (``aser_n_smp_cls``, 4).
    """

    def __init__(self, mem_size: int, batch_size_mem: int | None = None, k: int = 3,
                 n_per_class: int = 4):  # fmt: skip
        super().__init__()
        self.mem_size, self.batch_size_mem, self.k = mem_size, batch_size_mem, k
        self.n_per_class = n_per_class
        self.x: torch.Tensor | None = None  # (filled, T, F + 1)
        self.y = torch.zeros(0, dtype=torch.long)
        self.t = torch.zeros(0, dtype=torch.long)
        self.seen = 0  # sequences offered to the memory so far

    # -- features ---------------------------------------------------------------------------
    @torch.no_grad()
    def _features(self, strategy, x: torch.Tensor) -> torch.Tensor:
        model = strategy.model
        was_training = model.training
        model.eval()
        try:
            return model.encoder(x.to(strategy.device)).cpu()
        finally:
            model.train(was_training)

    def _balanced(self, per_class: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """Up to ``per_class`` random memory rows of each class (not in ``exclude``)."""
        allowed = torch.ones(len(self.y), dtype=torch.bool)
        if exclude is not None:
            allowed[exclude] = False
        picks = []
        for c in torch.unique(self.y).tolist():
            rows = torch.nonzero(allowed & (self.y == c)).flatten()
            picks.append(rows[torch.randperm(len(rows))[:per_class]])
        return torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long)

    # -- retrieval ----------------------------------------------------------------------------
    def before_forward(self, strategy, **kwargs):
        if self.x is None or not len(self.y):
            return
        x, y, t = strategy.mbatch[:3]
        size = self.batch_size_mem or strategy.train_mb_size
        if self.seen <= self.mem_size:
            rows = torch.randperm(len(self.y))[:size]
        else:
            rows = self._retrieve(strategy, x.cpu(), y.cpu(), size)
        steps, features = max(x.shape[1], self.x.shape[1]), max(x.shape[2], self.x.shape[2]) - 1
        memory_x = pad_item(self.x[rows], steps, features).to(x.device)
        strategy.mbatch[0] = torch.cat([memory_x, pad_item(x, steps, features)])
        strategy.mbatch[1] = torch.cat([self.y[rows].to(y.device), y])
        strategy.mbatch[2] = torch.cat([self.t[rows].to(t.device), t])

    def _retrieve(self, strategy, x, y, size: int) -> torch.Tensor:
        candidates = self._balanced(self.n_per_class)
        cooperative = self._balanced(self.n_per_class, exclude=candidates)
        cand_f = self._features(strategy, self.x[candidates])
        adversarial = knn_shapley(self._features(strategy, x), y, cand_f, self.y[candidates],
                                  self.k)  # fmt: skip
        score = -adversarial.mean(dim=0)
        if len(cooperative):
            coop_f = self._features(strategy, self.x[cooperative])
            score += knn_shapley(coop_f, self.y[cooperative], cand_f, self.y[candidates],
                                 self.k).mean(dim=0)  # fmt: skip
        return candidates[torch.argsort(score, descending=True, stable=True)[:size]]

    # -- update -------------------------------------------------------------------------------
    def after_training_exp(self, strategy, **kwargs):
        from torch.utils.data import BatchSampler, RandomSampler

        from clstm.data.batches import loader

        data = strategy.experience.dataset.eval()
        batches = BatchSampler(RandomSampler(range(len(data))), strategy.train_mb_size, False)
        for x, y, t, *_ in loader(data, batches, pin_memory=False):
            self._update(strategy, x, y, t)

    def _store(self, x, y, t) -> None:
        if self.x is None:
            self.x = x.new_zeros(0, *x.shape[1:])
        steps, features = max(x.shape[1], self.x.shape[1]), max(x.shape[2], self.x.shape[2]) - 1
        self.x = torch.cat([pad_item(self.x, steps, features), pad_item(x, steps, features)])
        self.y, self.t = torch.cat([self.y, y]), torch.cat([self.t, t])

    def _update(self, strategy, x, y, t) -> None:
        room = self.mem_size - len(self.y)
        if room > 0:
            self._store(x[:room], y[:room], t[:room])
            self.seen += len(x[:room])
            x, y, t = x[room:], y[room:], t[room:]
        if not len(x):
            return
        steps, features = max(x.shape[1], self.x.shape[1]), max(x.shape[2], self.x.shape[2]) - 1
        self.x, x = pad_item(self.x, steps, features), pad_item(x, steps, features)
        classes = torch.unique(torch.cat([self.y, y]))
        share = torch.bincount(self.y, minlength=int(classes.max()) + 1).float() / self.mem_size
        threshold = torch.empty(()).uniform_(0, 1 / len(classes)).item()
        minority = share[y] < threshold
        evaluation = self._balanced(self.n_per_class)
        candidates = self._balanced_random(len(classes) * self.n_per_class, exclude=evaluation)
        eval_x = torch.cat([self.x[evaluation], x[minority]])
        eval_y = torch.cat([self.y[evaluation], y[minority]])
        cand_f = self._features(strategy, torch.cat([self.x[candidates], x]))
        cand_y = torch.cat([self.y[candidates], y])
        values = knn_shapley(self._features(strategy, eval_x), eval_y, cand_f, cand_y, self.k)
        order = torch.argsort(values.sum(dim=0), descending=True, stable=True)
        n_memory = len(candidates)
        kept, dropped = order[:n_memory], order[n_memory:]
        incoming = kept[kept >= n_memory] - n_memory  # batch sequences among the best
        replaced = candidates[dropped[dropped < n_memory]]  # memory candidates among the rest
        self.x[replaced], self.y[replaced], self.t[replaced] = x[incoming], y[incoming], t[incoming]
        self.seen += len(x)

    def _balanced_random(self, size: int, exclude: torch.Tensor) -> torch.Tensor:
        """``size`` memory rows drawn uniformly, none in ``exclude``."""
        allowed = torch.ones(len(self.y), dtype=torch.bool)
        allowed[exclude] = False
        rows = torch.nonzero(allowed).flatten()
        return rows[torch.randperm(len(rows))[:size]]
