"""Streams whose targets are not one class per sequence (:mod:`clstm.targets`), from arrays.

The counterpart of :func:`clstm.data.arrays.benchmark_from_arrays` for the target kinds without
a class per sequence (``per_step``, ``per_step_bits``, ``regression``), used by generated
benchmarks (the Copy Task family, ``forecast_regimes``). Inputs are stored as everywhere in
clstm (right-padded, mask channel last, each dataset at its own shape); per-step targets are
stored at the stream's length, :data:`clstm.targets.NO_TARGET` at every step that carries none,
so that every loader's default collation works; regression targets are ``(N, K)`` floats. The
datasets are plain Avalanche datasets (no ``targets`` attribute: there is no class per sample),
with ``lengths`` and task labels as data attributes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from clstm.data.sequences import SequenceBenchmark, digest_padded, pad_dense
from clstm.errors import DataError

#: (x (N, T, F), lengths (N,), y): y (N, T) classes or (N, T, W) bits (NO_TARGET at steps without
#: a target), or (N, K) real values for regression
StepSplit = tuple[np.ndarray, np.ndarray, np.ndarray]


def _dataset(x: torch.Tensor, y: torch.Tensor, lengths: np.ndarray, task: int, steps, features):
    from avalanche.benchmarks.utils import (
        AvalancheDataset,
        ConstantSequence,
        DataAttribute,
        TaskLabels,
    )

    from clstm.data.sequences import SequenceDataset

    return AvalancheDataset(
        [SequenceDataset(x, y, steps, features)],
        data_attributes=[
            DataAttribute(np.asarray(lengths).tolist(), "lengths"),
            TaskLabels(ConstantSequence(task, len(y))),
        ],
    )


def _check(split: StepSplit, kind, where: str) -> None:
    x, lengths, y = split
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"{where}: x must be a non-empty (N, T, F) array, got shape {x.shape}")
    kind.check_targets(x, lengths, y, where)


def target_benchmark(
    train: Sequence[StepSplit],
    test: Sequence[StepSplit],
    *,
    target: str,
    n_outputs: int,
    names: Sequence[str],
    scenario: str = "task",
    tag: str = "",
) -> SequenceBenchmark:
    """One experience per ``(train[i], test[i])``; ``scenario`` ``task`` (task label = index,
    one head per task) or ``domain`` (one shared head). ``n_outputs``: classes per step
    (``per_step``), bits per step (``per_step_bits``) or values per sequence (``regression``).
    Identical input arrays (the same object) are padded and stored once. ``tag`` enters the
    fingerprint (e.g. the generator's options)."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    from clstm.targets import KINDS, kind_named

    try:
        kind = kind_named(target)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if kind.classes:  # one class per sequence: labels, class maps and class scenarios
        others = ", ".join(n for n, k in KINDS.items() if not k.classes)
        raise DataError(
            f"{target} targets are built with clstm.benchmark_from_arrays; target_benchmark "
            f"takes {others}"
        )
    if scenario not in ("task", "domain"):
        raise DataError(f"{target} targets need scenario task or domain, got '{scenario}'")
    if not (len(train) == len(test) == len(names)) or not train:
        raise DataError("give one train split, one test split and one name per experience")
    for i, (tr, te) in enumerate(zip(train, test, strict=True)):
        _check(tr, kind, f"train dataset {i} ('{names[i]}')")
        _check(te, kind, f"test dataset {i} ('{names[i]}')")
    every = [*train, *test]
    steps = max(int(np.max(lengths)) for _, lengths, _ in every)
    features = max(x.shape[2] for x, _, _ in every)
    digest = hashlib.sha256(f"{target}|{scenario}|{tag}".encode())
    stored: dict[int, torch.Tensor] = {}

    def dataset(split: StepSplit, task: int):
        x, lengths, y = split
        if id(x) not in stored:
            stored[id(x)] = pad_dense(x, lengths, int(np.max(lengths)), x.shape[2])
        xt = stored[id(x)]
        yt = kind.stored_targets(y, steps)
        digest_padded(digest, xt, steps, features)
        for tensor in (yt, torch.tensor([task])):
            digest.update(tensor.numpy().tobytes())
        return _dataset(xt, yt, lengths, task, steps, features)

    streams = {
        name: [dataset(split, i if scenario == "task" else 0) for i, split in enumerate(splits)]
        for name, splits in (("train", train), ("test", test))
    }
    bench = benchmark_from_datasets(**streams)
    if scenario == "task":
        bench = with_task_labels(bench)
    return SequenceBenchmark(
        scenario=bench,
        n_features=features,
        n_classes=n_outputs,
        experience_names=list(names),
        scenario_name=scenario,
        features_per_experience=[x.shape[2] for x, _, _ in train],
        fingerprint=digest.hexdigest(),
        target=target,
    )
