"""Length-bucketed batches: similar lengths together, so little compute goes to padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose sequences have similar lengths, in random order.

    Each epoch: shuffle all indices, cut them into pools of ``pool_batches * batch_size``, sort
    each pool by length (stable, so equal lengths stay shuffled), cut pools into batches and
    shuffle the order of all batches. Randomness comes from torch's global generator (seeded by
    the run) unless ``generator`` is given.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        pool_batches: int = 32,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        as_tensors: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = batch_size
        self.pool = max(1, pool_batches) * batch_size
        self.drop_last = drop_last
        self.generator = generator
        self.as_tensors = as_tensors  # yield index tensors (for TensorBatches), not lists

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        batches = []
        for start in range(0, len(order), self.pool):
            pool = order[start : start + self.pool]
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k] if self.as_tensors else batches[k].tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        if not self.drop_last:
            return sum(-(-min(self.pool, n - s) // self.batch_size) for s in range(0, n, self.pool))
        return sum(min(self.pool, n - s) // self.batch_size for s in range(0, n, self.pool))


class ConsecutiveWindowsBatchSampler(Sampler[list[int]]):
    """Batches for stateful training over series stored series-major.

    Sample ``s * n_windows + w`` is window ``w`` of series ``s``. Series are taken in groups of
    ``batch_size`` (shuffled each epoch if ``shuffle``); each group yields ``n_windows`` batches in
    window order, and row ``b`` of batch ``k + 1`` is the window that follows row ``b`` of batch
    ``k``. A group's first batch holds the series' first windows (where state must be reset).
    """

    def __init__(
        self,
        n_samples: int,
        n_windows: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ):
        if n_samples % n_windows:
            raise ValueError(f"{n_samples} samples are not whole series of {n_windows} windows")
        self.n_series = n_samples // n_windows
        self.n_windows = n_windows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            series = torch.randperm(self.n_series, generator=self.generator)
        else:
            series = torch.arange(self.n_series)
        for start in range(0, self.n_series, self.batch_size):
            group = series[start : start + self.batch_size] * self.n_windows
            for w in range(self.n_windows):
                yield (group + w).tolist()

    def __len__(self) -> int:
        return -(-self.n_series // self.batch_size) * self.n_windows
