"""Whole mini-batches cut from tensors instead of collated from per-sample reads.

Avalanche datasets return one sample per ``__getitem__`` through several layers (subsets,
concatenations, transform groups, data attributes): ~13 µs a sample, which on a small LSTM
was a fifth of each training step. :func:`stacked` reads a dataset's samples once and stacks
them; :class:`TensorBatches` then serves a mini-batch as one indexing operation per tensor.
Only datasets whose samples are fixed functions of their index qualify (no transforms
anywhere in the dataset, every element a tensor or a number), so the batches are exactly the
ones per-sample loading would have produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

MAX_BYTES = 2**30  # datasets larger than this are left to per-sample loading (no copy is made)


class TensorBatches(Dataset):
    """Stacked samples; ``batches[indices]`` is the collated mini-batch of those samples."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)

    def __getitem__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return [t[index] for t in self.tensors]


def _has_transforms(dataset: Any) -> bool:
    """Whether any node of an Avalanche dataset applies a transform (in any group)."""
    stack = [getattr(dataset, "_flat_data", dataset)]
    while stack:
        node = stack.pop()
        for name in ("_transform_groups", "_frozen_transform_groups"):
            groups = getattr(node, name, None)
            if groups is not None and any(
                t is not None for t in getattr(groups, "transform_groups", {}).values()
            ):
                return True
        stack.extend(getattr(node, "_datasets", None) or [])
    return False


def stacked(dataset: Any, max_bytes: int = MAX_BYTES) -> TensorBatches | None:
    """The dataset's samples stacked into tensors, or None where that would not be exact.

    Reads every sample once (no random numbers are drawn). None for an empty dataset, one with
    transforms, samples that are not tuples of tensors/numbers, or more than ``max_bytes``.
    """
    n = len(dataset)
    if n == 0 or _has_transforms(dataset):
        return None
    first = dataset[0]
    if not isinstance(first, (tuple, list)) or not all(
        isinstance(e, (torch.Tensor, int, float)) for e in first
    ):
        return None
    size = sum(e.numel() * e.element_size() if isinstance(e, torch.Tensor) else 8 for e in first)
    if size * n > max_bytes:
        return None
    collate = getattr(dataset, "collate_fn", None) or torch.utils.data.default_collate
    batch = collate([dataset[i] for i in range(n)])
    if not all(isinstance(t, torch.Tensor) and len(t) == n for t in batch):
        return None
    return TensorBatches(batch)


def batch_loader(
    batches: TensorBatches, batch_sampler: Sampler[list[int]], *, pin_memory: bool = False
) -> DataLoader:
    """A data loader yielding ``batches[indices]`` for each list of indices of the sampler."""
    return DataLoader(batches, sampler=batch_sampler, batch_size=None, pin_memory=pin_memory)


def loader(dataset: Any, batch_sampler: Sampler[list[int]], *, pin_memory: bool) -> DataLoader:
    """The sampler's batches of ``dataset``: cut from stacked samples where that is exact,
    otherwise collated from per-sample reads (the same batches either way)."""
    batches = stacked(dataset)
    if batches is not None:
        return batch_loader(batches, batch_sampler, pin_memory=pin_memory)
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=getattr(dataset, "collate_fn", None),
        pin_memory=pin_memory,
    )
