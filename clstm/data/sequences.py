"""How clstm represents a batch of variable-length sequences and turns datasets into experiences.

A batch is one right-padded float tensor ``x`` of shape ``(B, T, F + 1)``: the first ``F`` channels
are the features, the last channel is a validity mask (1.0 at a sequence's real steps, 0.0 at
padding). Because lengths travel inside ``x``, every Avalanche strategy, buffer and data loader that
moves ``mb_x`` around as a plain tensor keeps them, and the model reads each sequence's output at
its true last step (see :class:`clstm.models.RecurrentEncoder`).

All samples of a benchmark are read at one shape (the stream's longest sequence and largest
feature count), so Avalanche's and torch's default collation works in every data loader a strategy
builds (replay buffers, EWC/MAS/GEM importance passes, ...). Memory holds each dataset at its own
shape and samples are padded as they are read (:class:`SequenceDataset`; stacked batches are
padded per batch, :mod:`clstm.data.batches`). No compute is spent on that padding: the model
trims each batch to its own longest sequence, and training batches are drawn length-bucketed
(:class:`clstm.data.sampling.LengthBucketBatchSampler`). Each dataset also carries a ``lengths``
data attribute, which Avalanche keeps through subsets and concatenations.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def pad_sequences(
    sequences: Sequence[np.ndarray], max_len: int | None = None, n_features: int | None = None
) -> torch.Tensor:
    """Right-pad ``(T_i, F_i)`` arrays into one ``(N, T, F + 1)`` float32 tensor, mask channel last.

    ``T`` is ``max_len`` if given, else the longest sequence; ``F`` is ``n_features`` if given
    (extra feature channels are zero), else the largest ``F_i``.
    """
    if len(sequences) == 0:
        raise ValueError("cannot pad an empty list of sequences")
    lengths = [len(s) for s in sequences]
    t_max = max(lengths) if max_len is None else max_len
    f_max = max(s.shape[1] for s in sequences) if n_features is None else n_features
    out = torch.zeros(len(sequences), t_max, f_max + 1, dtype=torch.float32)
    for i, seq in enumerate(sequences):
        out[i, : lengths[i], : seq.shape[1]] = torch.as_tensor(seq, dtype=torch.float32)
        out[i, : lengths[i], f_max] = 1.0
    return out


def pad_dense(x: np.ndarray, lengths: np.ndarray, max_len: int, n_features: int) -> torch.Tensor:
    """Right-padded ``(N, T_x, F_x)`` data (zeros after each sequence's length) -> the
    ``(N, max_len, n_features + 1)`` float32 tensor of :func:`pad_sequences`, without a Python
    loop over sequences."""
    x = x[:, :max_len]  # steps beyond every length are padding
    n, t, f = x.shape
    out = torch.zeros(n, max_len, n_features + 1, dtype=torch.float32)
    out[:, :t, :f] = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    out[:, :, n_features] = (
        torch.arange(max_len)[None, :] < torch.from_numpy(np.asarray(lengths))[:, None]
    ).to(torch.float32)
    return out


def split_mask(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a padded batch ``(B, T, F + 1)`` into features ``(B, T, F)`` and lengths ``(B,)``."""
    if x.dim() != 3 or x.shape[-1] < 2:
        raise ValueError(
            f"expected a padded batch (B, T, F + 1) with a mask channel, got shape {tuple(x.shape)}"
        )
    lengths = x[..., -1].sum(dim=1).round().long()  # (B,)
    return x[..., :-1], lengths


_OWN_SHAPE = contextvars.ContextVar("clstm_own_shape", default=False)


@contextlib.contextmanager
def own_shape_items():
    """Within this block, :class:`SequenceDataset` items come at their dataset's own shape
    (not padded to the stream's): :func:`clstm.data.batches.stacked` reads them so."""
    token = _OWN_SHAPE.set(True)
    try:
        yield
    finally:
        _OWN_SHAPE.reset(token)


def pad_item(x: torch.Tensor, n_steps: int, n_features: int) -> torch.Tensor:
    """Right-pad ``(..., T_e, F_e + 1)`` (mask channel last) to ``(..., n_steps, n_features + 1)``:
    zero steps after the end, zero feature channels before the mask channel."""
    *lead, t, f1 = x.shape
    if t == n_steps and f1 == n_features + 1:
        return x
    out = x.new_zeros(*lead, n_steps, n_features + 1)
    out[..., :t, : f1 - 1] = x[..., :-1]
    out[..., :t, n_features] = x[..., -1]
    return out


class SequenceDataset(torch.utils.data.Dataset):
    """Padded sequences with their targets; items are ``(x_i, y_i)``.

    ``x`` is ``(N, T_e, F_e + 1)``, this dataset's own shape; items are padded to the stream's
    ``(n_steps, n_features + 1)`` when read (default: the dataset's own), so every sample of a
    stream has one shape - which Avalanche's default collation needs in every loader a strategy
    builds (replay, joint, cumulative mix experiences) - while memory holds each dataset at its
    own shape (a stream of 128-step windows beside 784-step sequences does not store the windows
    at 784 steps).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        n_steps: int | None = None,
        n_features: int | None = None,
    ):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} sequences but y has {len(y)} labels")
        self.x = x  # (N, T_e, F_e + 1)
        # (N,) classes, or per-step targets at the stream's steps (clstm.targets)
        self.y = y if y.is_floating_point() else y.long()
        self.n_steps = x.shape[1] if n_steps is None else n_steps
        self.n_features = x.shape[2] - 1 if n_features is None else n_features
        if self.n_steps < x.shape[1] or self.n_features < x.shape[2] - 1:
            raise ValueError(
                f"cannot pad sequences of shape {tuple(x.shape[1:])} to "
                f"({self.n_steps}, {self.n_features + 1})"
            )

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if _OWN_SHAPE.get():
            return self.x[index], self.y[index]
        return pad_item(self.x[index], self.n_steps, self.n_features), self.y[index]


def classification_dataset(
    x: torch.Tensor,
    y: torch.Tensor,
    task: int = 0,
    n_steps: int | None = None,
    n_features: int | None = None,
) -> Any:
    """Padded sequences as an Avalanche ``ClassificationDataset``; items are ``(x, y, task)``,
    ``x`` padded to ``(n_steps, n_features + 1)`` when read (see :class:`SequenceDataset`).

    Data attributes: ``targets``, ``lengths`` and ``targets_task_labels`` (constant ``task``).
    Every item carries a task label, as in Avalanche's own benchmarks (0 where the scenario has
    no tasks): strategies such as DER, GEM and EWC read it as the batch's last element, and
    replay buffers mix items of several datasets, which must all have the same structure.
    """
    from avalanche.benchmarks.utils import ConstantSequence, DataAttribute, TaskLabels
    from avalanche.benchmarks.utils.classification_dataset import ClassificationDataset

    lengths = x[..., -1].sum(dim=1).round().long()
    return ClassificationDataset(
        [SequenceDataset(x, y, n_steps, n_features)],
        data_attributes=[
            DataAttribute(y.long().tolist(), "targets"),
            DataAttribute(lengths.tolist(), "lengths"),
            TaskLabels(ConstantSequence(task, len(y))),
        ],
    )


@dataclass
class SequenceBenchmark:
    """An Avalanche benchmark of sequence-classification experiences plus what the model needs.

    ``scenario`` has ``train_stream`` and ``test_stream`` (and ``valid_stream`` when a validation
    split was requested), one experience per dataset (or per group of classes).
    """

    scenario: Any
    n_features: int
    n_classes: int
    experience_names: list[str]
    scenario_name: str = "domain"
    features_per_experience: list[int] | None = None
    classes_per_experience: list[list[int]] | None = None
    label_maps: list[dict[str, int]] | None = None
    windows_per_series: int | None = None  # series-major consecutive windows (stateful training)
    fingerprint: str | None = None  # SHA-256 of the data, computed where the tensors are made
    #: what the model predicts (clstm.targets.KINDS); for per-step kinds ``n_classes`` is the
    #: number of outputs per step (classes, or bits of ``per_step_bits``)
    target: str = "sequence"
    #: per training experience, ``(arrival, observed)``: each row's time of its last input and
    #: of its last target, for streams whose rows are windows of series in time (forecasting);
    #: an online stream (``online.batch``) then orders them in time and delays their training
    arrival_times: list[tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def n_experiences(self) -> int:
        return len(self.experience_names)

    @property
    def kind(self):
        """The :class:`clstm.targets.TargetKind` of :attr:`target`."""
        from clstm.targets import kind_named

        return kind_named(self.target)

    @property
    def has_validation(self) -> bool:
        return "valid" in getattr(self.scenario, "streams", {})

    def describe(self) -> dict:
        """A JSON-ready description for provenance (``meta.json``)."""
        return {
            "scenario": self.scenario_name,
            "target": self.target,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "experiences": [
                {
                    "name": name,
                    "n_train": len(self.scenario.train_stream[i].dataset),
                    "n_test": len(self.scenario.test_stream[i].dataset),
                    "n_features": (self.features_per_experience or [self.n_features] * (i + 1))[i],
                    "classes": (self.classes_per_experience or [None] * (i + 1))[i],
                }
                for i, name in enumerate(self.experience_names)
            ],
            "label_maps": self.label_maps,
        }


def split_counts(n_classes: int, n_experiences: int) -> list[int]:
    """Classes per experience; leftovers go to the first experiences (none is dropped)."""
    base, extra = divmod(n_classes, n_experiences)
    return [base + (1 if i < extra else 0) for i in range(n_experiences)]


def make_scenario(
    splits: Mapping[str, Sequence[Any]],
    maps: Sequence[Mapping[Any, int]],
    *,
    scenario: str,
    names: Sequence[str] | None,
    n_experiences: int | None = None,
    class_order: Sequence[Any] | None = None,
    store: str = "own",
):
    """Frame validated splits, padded to one sample shape, with Avalanche's benchmark builders.

    ``splits`` maps stream names (``train``, ``test``, optionally ``valid``) to one split object per
    dataset (``.x`` right-padded ``(N, T, F)``, ``.lengths``, ``.labels``); ``maps`` maps raw
    labels to class indices per dataset. ``store="own"`` keeps each dataset's tensor at its own
    longest length and feature count, padded to the stream's shape only when samples are read;
    ``"stream"`` stores every sample padded (the same samples; kept to measure what that costs).
    Returns ``(CLScenario, experience names, classes per experience, fingerprint)``, the last a
    SHA-256 of every padded tensor, label and task label, in stream order.
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import (
        class_incremental_benchmark,
        with_classes_timeline,
    )
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    from clstm.errors import DataError

    if store not in ("own", "stream"):
        raise ValueError(f"store must be 'own' or 'stream', got '{store}'")
    every = [part for parts in splits.values() for part in parts]
    t_max = max(int(part.lengths.max()) for part in every)
    f_max = max(part.x.shape[2] for part in every)
    digest = hashlib.sha256(f"{scenario}|{n_experiences}|{class_order}".encode())

    def dataset(part, mapping, task=0):
        own = store == "own"
        t, f = (int(part.lengths.max()), part.x.shape[2]) if own else (t_max, f_max)
        x = pad_dense(part.x, part.lengths, t, f)  # (N, T_e, F_e + 1), or the stream's shape
        y = torch.tensor([mapping[v] for v in part.labels.tolist()], dtype=torch.long)
        digest_padded(digest, x, t_max, f_max)  # of the samples as read: one digest either way
        for tensor in (y, torch.tensor([task])):
            digest.update(tensor.numpy().tobytes())
        return classification_dataset(x, y, task=task, n_steps=t_max, n_features=f_max)

    if scenario in ("domain", "task"):
        streams = {
            stream: [
                dataset(part, maps[i], task=i if scenario == "task" else 0)
                for i, part in enumerate(parts)
            ]
            for stream, parts in splits.items()
        }
        bench = benchmark_from_datasets(**streams)
        if scenario == "task":
            # Task label = experience index, set when each dataset is made: Avalanche 0.6's
            # task_incremental_benchmark(reset_task_labels=True) changes what items return but
            # not the experiences' task_labels, so they would all claim task 0.
            bench = with_task_labels(bench)
        bench = with_classes_timeline(bench)
        classes = [
            sorted({maps[i][v] for v in part.labels.tolist()})
            for i, part in enumerate(splits["train"])
        ]
        return bench, list(names), classes, digest.hexdigest()

    mapping = maps[0]
    inverse = {k: c for c, k in mapping.items()}
    n_classes = len(mapping)
    if class_order is None:
        order = list(range(n_classes))
    else:
        unknown = [c for c in class_order if str(c) not in mapping]
        by_text = dict(mapping)
        if unknown or len(class_order) != n_classes or len(set(map(str, class_order))) != n_classes:
            raise DataError(
                f"class_order must list each of the {n_classes} classes once "
                f"({', '.join(map(str, mapping))}), got {list(class_order)}"
            )
        order = [by_text[str(c)] for c in class_order]
    count = n_experiences if n_experiences is not None else math.ceil(n_classes / 2)
    if not 1 <= count <= n_classes:
        raise DataError(f"n_experiences must be between 1 and the {n_classes} classes, got {count}")
    counts = split_counts(n_classes, count)
    try:
        bench = class_incremental_benchmark(
            {stream: dataset(parts[0], mapping) for stream, parts in splits.items()},
            class_order=order,
            num_classes_per_exp=counts,
        )
    except ValueError as exc:  # e.g. a split that lacks some class
        raise DataError(f"cannot split the dataset by classes: {exc}") from None
    groups, start = [], 0
    for c in counts:
        groups.append(sorted(order[start : start + c]))
        start += c
    experience_names = ["classes " + ",".join(str(inverse[k]) for k in g) for g in groups]
    return bench, experience_names, groups, digest.hexdigest()


def digest_padded(digest: Any, x: torch.Tensor, n_steps: int, n_features: int) -> None:
    """Feed ``x`` padded to ``(n_steps, n_features + 1)`` into ``digest``, a few MB at a time
    (the bytes of the whole padded tensor, without holding it)."""
    if x.shape[1:] == (n_steps, n_features + 1):
        digest.update(x.numpy())  # the buffer itself, no copy
        return
    rows = max(1, 2**24 // (n_steps * (n_features + 1) * 4))
    for start in range(0, len(x), rows):
        digest.update(pad_item(x[start : start + rows], n_steps, n_features).numpy())


def as_sequence_benchmark(obj: Any) -> SequenceBenchmark:
    """Accept a :class:`SequenceBenchmark` or an Avalanche benchmark in clstm's padded format."""
    if isinstance(obj, SequenceBenchmark):
        return obj
    train = getattr(obj, "train_stream", None)
    test = getattr(obj, "test_stream", None)
    if train is None or test is None:
        raise ValueError(
            "benchmark must be a clstm SequenceBenchmark (see clstm.benchmark_from_arrays) or an "
            "Avalanche benchmark with train_stream and test_stream"
        )
    experiences = list(train)
    x = experiences[0].dataset[0][0]
    mask = x[..., -1] if isinstance(x, torch.Tensor) and x.dim() == 2 else None
    if mask is None or not bool(((mask == 0) | (mask == 1)).all()) or bool((mask.diff() > 0).any()):
        raise ValueError(
            "benchmark samples must be (T, F + 1) tensors with clstm's mask channel last "
            "(right-padded, 1 at real steps); build them with clstm.data.sequences.pad_sequences"
        )
    n_classes = 1 + max(max(e.dataset.targets) for e in experiences)
    task_aware = hasattr(experiences[0], "task_labels")
    return SequenceBenchmark(
        scenario=obj,
        n_features=x.shape[-1] - 1,
        n_classes=int(n_classes),
        experience_names=[f"exp{i}" for i in range(len(experiences))],
        scenario_name="task" if task_aware else "domain",
    )
