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

from clstm.data.sequences import pad_item

MAX_BYTES = 2**30  # datasets larger than this are left to per-sample loading (no copy is made)


class TensorBatches(Dataset):
    """Stacked samples; ``batches[indices]`` is the collated mini-batch of those samples.

    ``tensors[0]`` may instead be a list of ``(positions, x)`` parts, each holding the samples
    at ``positions`` at their own shape ``(T_e, F_e + 1)`` (a stream whose datasets differ in
    length or feature count, stored unpadded); batches are then padded to ``shape``, the shape
    per-sample reads return (:func:`clstm.data.sequences.pad_item`), so they are the same
    batches either way.
    """

    def __init__(self, tensors: Sequence[Any], shape: tuple[int, int] | None = None):
        self.tensors = tuple(tensors)
        self.shape = shape  # (T, F + 1) of a sample as read
        self.parts: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        if isinstance(self.tensors[0], list):
            self.parts = self.tensors[0]
            n = len(self.tensors[1])
            self.part_of = torch.empty(n, dtype=torch.long)
            self.row_of = torch.empty(n, dtype=torch.long)
            for p, (positions, x) in enumerate(self.parts):
                self.part_of[positions] = p
                self.row_of[positions] = torch.arange(len(x))

    def __len__(self) -> int:
        return len(self.tensors[1] if self.parts is not None else self.tensors[0])

    @property
    def nbytes(self) -> int:
        tensors = [x for _, x in self.parts or []] + list(self.tensors[1 if self.parts else 0 :])
        return sum(t.numel() * t.element_size() for t in tensors)

    def devices(self) -> set[torch.device]:
        """The devices of the stored tensors (every batch is cut on these)."""
        stored = [x for _, x in self.parts or []] + list(self.tensors[1 if self.parts else 0 :])
        return {t.device for t in stored}

    def __getitem__(self, indices: Sequence[int] | torch.Tensor) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.parts is None:
            x = self.tensors[0].index_select(0, index)  # as x[index], without its dispatch
            if self.shape is not None:
                x = pad_item(x, self.shape[0], self.shape[1] - 1)
            return [x, *self._columns(index)]
        steps, channels = self.shape
        part_of, rows = self.part_of[index], self.row_of[index]
        x = self.parts[0][1].new_zeros(len(index), steps, channels)
        for p, (_, stored) in enumerate(self.parts):
            at = (part_of == p).nonzero().squeeze(1)
            if len(at):
                x[at] = pad_item(stored[rows[at]], steps, channels - 1)
        return [x, *self._columns(index)]

    def _columns(self, index: torch.Tensor) -> list[torch.Tensor]:
        """The batch's targets, task labels and any further columns."""
        return [t.index_select(0, index) for t in self.tensors[1:]]


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


def stacked(
    dataset: Any, max_bytes: int = MAX_BYTES, *, direct_reads: bool = True
) -> TensorBatches | None:
    """The dataset's samples stacked into tensors, or None where that would not be exact.

    Reads every sample once (no random numbers are drawn), clstm's sequences at their own
    dataset's shape (:func:`clstm.data.sequences.own_shape_items`): a mixed stream's samples
    are kept unpadded and padded per batch. None for an empty dataset, one with transforms,
    samples that are not tuples of tensors/numbers, or more than ``max_bytes``.
    """
    from clstm.data.sequences import own_shape_items

    n = len(dataset)
    if n == 0 or _has_transforms(dataset):
        return None
    first = dataset[0]  # as read: the shape every batch has
    if not isinstance(first, (tuple, list)) or not all(
        isinstance(e, (torch.Tensor, int, float)) for e in first
    ):
        return None
    with own_shape_items():
        own = dataset[0]
        size = sum(e.numel() * e.element_size() if isinstance(e, torch.Tensor) else 8 for e in own)
        if size * n > max_bytes:  # a first estimate, before reading everything
            return None
        direct = _rows_of_sequences(dataset) if direct_reads else None
        items = None if direct is not None else [dataset[i] for i in range(n)]  # views
    collate = getattr(dataset, "collate_fn", None) or torch.utils.data.default_collate
    x0 = first[0]
    if direct is not None:
        batches = TensorBatches(direct, shape=tuple(x0.shape))
        return _settled(batches, max_bytes)
    groups: dict[tuple, list[int]] = {}
    if isinstance(x0, torch.Tensor) and x0.dim() == 2:
        for i, item in enumerate(items):
            groups.setdefault(tuple(item[0].shape), []).append(i)
    if len(groups) <= 1:
        batch = collate(items)
        parts = None
    else:
        batch = [None, *collate([item[1:] for item in items])]
        parts = [
            (torch.tensor(positions), torch.stack([items[i][0] for i in positions]))
            for positions in groups.values()
        ]
        batch[0] = parts
    if not all(isinstance(t, torch.Tensor) and len(t) == n for t in batch[1 if parts else 0 :]):
        return None
    batches = TensorBatches(batch, shape=tuple(x0.shape) if isinstance(x0, torch.Tensor) else None)
    return _settled(batches, max_bytes)


def _settled(batches: TensorBatches, max_bytes: int) -> TensorBatches | None:
    if batches.nbytes > max_bytes:
        return None
    if batches.parts is None and batches.shape == tuple(batches.tensors[0].shape[1:]):
        batches.shape = None  # stored as read: batches need no padding
    return batches


def _rows_of_sequences(dataset: Any) -> list | None:
    """What :func:`stacked` makes of ``dataset``'s samples, read as whole tensors, or None.

    Reading 3,000 samples one by one through Avalanche's layers took ~40 ms per experience,
    ~5% of a small LSTM's run. Where every sample is a row of one of clstm's
    :class:`~clstm.data.sequences.SequenceDataset` leaves (Avalanche's flat data: leaves,
    possibly concatenated, possibly a subset of their rows, no transforms) and the dataset
    collates with ``default_collate``, the rows are gathered from the leaves' tensors instead
    and the data attributes Avalanche appends to each item are collated as it would: the same
    tensors as the per-sample path (tested). Anything else: None, and samples are read one by
    one.
    """
    from avalanche.benchmarks.utils import ConstantSequence

    from clstm.data.sequences import SequenceDataset

    flat = getattr(dataset, "_flat_data", None)
    leaves = getattr(flat, "_datasets", None)
    collate = getattr(dataset, "collate_fn", None)
    if (
        not leaves
        or not all(type(leaf) is SequenceDataset for leaf in leaves)
        or collate not in (None, torch.utils.data.default_collate)
        or type(dataset).__getitem__ is not _avalanche_getitem()
    ):
        return None
    n = len(dataset)
    indices = flat._indices
    rows = torch.arange(n) if indices is None else torch.tensor([indices[i] for i in range(n)])
    if len(leaves) == 1:
        leaf_of = torch.zeros(n, dtype=torch.long)
    else:  # Avalanche's bisect_right over the leaves' cumulative sizes, for all rows at once
        ends = torch.tensor(flat._cumulative_sizes)
        leaf_of = torch.bucketize(rows, ends, right=True)
        rows = rows - torch.cat([ends.new_zeros(1), ends[:-1]])[leaf_of]
    groups: dict[tuple, list[int]] = {}  # leaves by stored shape, in order of first sample
    for leaf in leaf_of.unique_consecutive().tolist():
        shape = tuple(leaves[leaf].x.shape[1:])
        if leaf not in groups.setdefault(shape, []):
            groups[shape].append(leaf)

    def gathered(name: str, among: list[int], at: torch.Tensor) -> torch.Tensor:
        if len(among) == 1:
            return getattr(leaves[among[0]], name).index_select(0, rows[at])
        parts = [getattr(leaves[leaf], name) for leaf in among]
        out = parts[0].new_empty(len(at), *parts[0].shape[1:])
        for leaf, part in zip(among, parts, strict=True):
            mine = (leaf_of[at] == leaf).nonzero().squeeze(1)
            out[mine] = part.index_select(0, rows[at][mine])
        return out

    every = torch.arange(n)
    all_leaves = [leaf for among in groups.values() for leaf in among]
    if len({leaves[leaf].y.shape[1:] for leaf in all_leaves}) > 1:
        return None  # targets of different shapes: collation fails as it would per sample
    columns = [gathered("y", all_leaves, every)]
    for attribute in dataset._data_attributes.values():
        if attribute.use_in_getitem:  # Avalanche appends these to every item, in this order
            if type(attribute.data) is ConstantSequence:  # one value (a task label): no reads
                values = [attribute.data[0]] * n if len(attribute.data) == n else None
            else:
                values = [attribute[i] for i in range(n)]
            if values is None:
                return None
            columns.append(torch.utils.data.default_collate(values))
    if len(groups) == 1:
        return [gathered("x", all_leaves, every), *columns]
    parts = []
    for among in groups.values():
        at = torch.isin(leaf_of, torch.tensor(among)).nonzero().squeeze(1)
        parts.append((at, gathered("x", among, at)))
    return [parts, *columns]


def _avalanche_getitem():
    from avalanche.benchmarks.utils.data import AvalancheDataset

    return AvalancheDataset.__getitem__


class SampledBatches:
    """Iterates ``batches[indices]`` for each batch of indices the sampler yields; ``len`` is the
    sampler's.

    What ``DataLoader(batches, sampler=batch_sampler, batch_size=None)`` yields (the same
    tensors, pinned when asked), without the loader's per-batch machinery: its fetcher, the
    element-wise ``default_convert`` of every batch and the profiler scopes cost ~50 µs per batch
    on this CPU, more than cutting the batch itself. Single-process only, as clstm's loaders
    are (the samples are already in memory).
    """

    def __init__(self, batches: TensorBatches, batch_sampler, *, pin_memory: bool = False):
        self.dataset = batches
        self.batch_sampler = batch_sampler
        self.pin_memory = pin_memory

    def __iter__(self):
        batches, pin = self.dataset, self.pin_memory
        # A DataLoader's iterator draws its workers' base seed from torch's global generator
        # before the first batch; drawing it here too keeps every later random number (and so
        # every run) exactly what it was with a DataLoader.
        torch.empty((), dtype=torch.int64).random_()
        for indices in self.batch_sampler:
            batch = batches[indices]
            yield [t.pin_memory() for t in batch] if pin else batch

    def __len__(self) -> int:
        return len(self.batch_sampler)


def batch_loader(
    batches: TensorBatches, batch_sampler: Sampler[list[int]], *, pin_memory: bool = False
) -> SampledBatches:
    """An iterable of ``batches[indices]`` for each list of indices of the sampler."""
    return SampledBatches(batches, batch_sampler, pin_memory=pin_memory)


def loader(
    dataset: Any, batch_sampler: Sampler[list[int]], *, pin_memory: bool
) -> SampledBatches | DataLoader:
    """The sampler's batches of ``dataset``: cut from stacked samples where that is exact,
    otherwise collated from per-sample reads (the same batches either way)."""
    batches = stacked(dataset)
    if batches is not None:
        if hasattr(batch_sampler, "as_tensors"):  # index tensors: no list -> tensor per batch
            batch_sampler.as_tensors = True
        return batch_loader(batches, batch_sampler, pin_memory=pin_memory)
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        collate_fn=getattr(dataset, "collate_fn", None),
        pin_memory=pin_memory,
    )
