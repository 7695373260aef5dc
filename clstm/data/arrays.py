"""Bring your own data: lists of sequence datasets -> a correct Avalanche stream.

:func:`benchmark_from_arrays` validates every dataset (with errors that name the dataset and the
problem), maps labels to contiguous integers (recording the mapping), splits a stratified validation
set off the training data, standardises each dataset with statistics of its own training split only,
pads every sequence to one common shape and frames the result in one of three scenarios with
Avalanche's benchmark builders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clstm.errors import DataError

__all__ = ["DataError", "benchmark_from_arrays"]  # DataError lives in clstm.errors

SCENARIOS = ("domain", "task", "class")
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class _Split:
    """One dataset split after validation: sequences ``(T_i, F)`` and raw labels."""

    sequences: list[np.ndarray]
    labels: np.ndarray


def _as_sequences(X: Any, where: str) -> list[np.ndarray]:
    """``(N, T, F)`` array or list of ``(T_i, F)`` arrays -> list of float64 ``(T_i, F)`` arrays."""
    if hasattr(X, "detach"):  # a torch tensor, possibly requiring grad or on a GPU
        X = X.detach().cpu()
    if hasattr(X, "__array__"):  # numpy arrays, torch tensors, ...
        X = np.asarray(X)
        if X.dtype == object or X.ndim == 3:
            X = list(X)
        elif X.ndim in (1, 2):
            raise DataError(
                f"{where}: X has shape {X.shape}; expected (N, T, F) or a list of (T_i, F) "
                "arrays (for univariate series use shape (N, T, 1))"
            )
        else:
            raise DataError(f"{where}: X has shape {X.shape}; expected (N, T, F)")
    if not isinstance(X, (list, tuple)):
        raise DataError(f"{where}: X must be an array (N, T, F) or a list of (T_i, F) arrays")
    if len(X) == 0:
        raise DataError(f"{where}: the dataset is empty")
    sequences = []
    n_features = None
    for i, seq in enumerate(X):
        if hasattr(seq, "detach"):
            seq = seq.detach().cpu()
        try:
            seq = np.asarray(seq, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{where}: sequence {i} is not numeric") from None
        if seq.ndim != 2:
            raise DataError(
                f"{where}: sequence {i} has shape {seq.shape}; each sequence must be (T_i, F)"
            )
        if seq.shape[0] == 0:
            raise DataError(f"{where}: sequence {i} has length 0")
        if n_features is None:
            n_features = seq.shape[1]
        elif seq.shape[1] != n_features:
            raise DataError(
                f"{where}: sequence {i} has {seq.shape[1]} features but sequence 0 has "
                f"{n_features}; all sequences of a dataset need the same feature count"
            )
        if not np.isfinite(seq).all():
            raise DataError(f"{where}: sequence {i} contains NaN or infinite values")
        if seq.size and np.abs(seq).max() > FLOAT32_MAX:
            raise DataError(
                f"{where}: sequence {i} has a value of magnitude {np.abs(seq).max():.3g}, beyond "
                f"float32 (max {FLOAT32_MAX:.3g}), which the model computes in; rescale the data"
            )
        sequences.append(seq)
    if n_features == 0:
        raise DataError(f"{where}: sequences have 0 features")
    return sequences


def _as_labels(y: Any, n: int, where: str) -> np.ndarray:
    """Validated labels as text (integer-like values as their integer: 3.0 -> '3')."""
    if hasattr(y, "detach"):
        y = y.detach().cpu()
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise DataError(f"{where}: y must be one label per sequence, got shape {labels.shape}")
    if len(labels) != n:
        raise DataError(f"{where}: X has {n} sequences but y has {len(labels)} labels")
    if labels.dtype.kind in "US":
        return labels.astype(str)
    if labels.dtype.kind == "O":
        if all(isinstance(v, str) for v in labels):
            return labels.astype(str)
        labels = np.array(labels.tolist())  # let numpy infer the dtype of the objects
    if labels.dtype.kind == "b" or labels.dtype.kind not in "iuf":
        raise DataError(f"{where}: labels must be integers (or integer-valued floats) or strings")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not np.all(labels == np.round(labels)):
            raise DataError(
                f"{where}: labels must be integer-like; found a non-integer value "
                f"{labels[~(labels == np.round(labels))][:1].tolist() or 'NaN/inf'}"
            )
        labels = labels.astype(np.int64)
    return labels.astype(str)


def _check(data: Any, where: str) -> _Split:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(f"{where}: expected an (X, y) pair")
    X, y = data
    sequences = _as_sequences(X, where)
    return _Split(sequences, _as_labels(y, len(sequences), where))


def _sorted_classes(values: np.ndarray) -> list:
    """Sorted unique labels; strings that all read as integers sort numerically ('2' < '10')."""
    unique = [str(v) for v in np.unique(values)]
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def _stratified_split(split: _Split, fraction: float, seed: int, where: str):
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split.sequences))
    try:
        keep, hold = train_test_split(
            index, test_size=fraction, stratify=split.labels, random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"{where}: cannot split off a stratified validation set: {exc}") from None
    pick = lambda ids: _Split([split.sequences[i] for i in ids], split.labels[ids])  # noqa: E731
    return pick(np.sort(keep)), pick(np.sort(hold))


def _standardize(train: _Split, others: Sequence[_Split]) -> None:
    """Per-feature standardisation fitted on ``train``'s real time steps only (no leakage)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.concatenate(train.sequences))
    for split in (train, *others):
        split.sequences = [scaler.transform(s) for s in split.sequences]


def _names(names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [f"exp{i}" for i in range(count)]
    names = [str(n) for n in names]
    if len(names) != count:
        raise DataError(f"names has {len(names)} entries for {count} datasets")
    if len(set(names)) != len(names):
        raise DataError(f"names must be unique, got {names}")
    return names


def benchmark_from_arrays(
    train: Sequence[tuple[Any, Any]],
    test: Sequence[tuple[Any, Any]],
    *,
    scenario: str = "domain",
    names: Sequence[str] | None = None,
    n_experiences: int | None = None,
    class_order: Sequence[Any] | None = None,
    standardize: bool = True,
    validation: float = 0.0,
    seed: int = 0,
):
    """Frame sequence datasets as an Avalanche benchmark: one dataset = one experience.

    :param train: ``[(X, y), ...]``, one pair per dataset. ``X`` is an array ``(N, T, F)`` or a
        list of ``(T_i, F)`` arrays (variable length); ``y`` holds integer-like labels or strings.
        Datasets may differ in length, feature count and classes.
    :param test: the matching test sets, same order.
    :param scenario: ``"domain"`` (one shared head, no task labels), ``"task"`` (task label =
        experience index, one head per experience) or ``"class"`` (one dataset split into
        experiences by classes with Avalanche's ``class_incremental_benchmark``).
    :param names: experience names (default ``exp0, exp1, ...``; class scenario: the classes).
    :param n_experiences: class scenario: how many experiences to split the classes into
        (default: 2 classes per experience). Leftover classes go to the first experiences, so no
        class is dropped.
    :param class_order: class scenario: the order in which classes arrive (original labels;
        default sorted).
    :param standardize: standardise each dataset per feature with statistics of its own training
        split (after the validation split is removed).
    :param validation: fraction of each training set held out, stratified by class, as the
        ``valid_stream`` (0 disables).
    :param seed: seed of the validation split.
    :returns: a :class:`clstm.data.sequences.SequenceBenchmark`.

    Labels are compared as text (``3``, ``3.0`` and ``"3"`` are one class) and mapped to
    ``0..C-1`` in sorted order (numerically when all are integers) - per experience in the task
    scenario, over all experiences otherwise (so a label means the same class in every
    experience) - and the mappings are kept in ``SequenceBenchmark.label_maps``.
    """
    from clstm.data.sequences import SequenceBenchmark, make_scenario

    if scenario not in SCENARIOS:
        raise DataError(f"scenario must be one of {', '.join(SCENARIOS)}, got '{scenario}'")
    if isinstance(validation, bool) or not isinstance(validation, (int, float, np.number)):
        raise DataError(
            f"validation must be a number in [0, 1) (e.g. 0.2), got {validation!r} "
            f"({type(validation).__name__})"
        )
    if not 0.0 <= validation < 1.0:
        raise DataError(f"validation must be in [0, 1), got {validation}")
    train, test = list(train), list(test)
    if not train:
        raise DataError("train is empty: give at least one (X, y) dataset")
    if len(train) != len(test):
        raise DataError(f"train has {len(train)} datasets but test has {len(test)}")
    if scenario == "class" and len(train) != 1:
        raise DataError(
            f"the class scenario splits one dataset by classes; got {len(train)} datasets "
            "(use scenario 'domain' or 'task' for a stream of datasets)"
        )
    labels_names = _names(names, len(train)) if scenario != "class" else None
    label = (lambda i: f"'{labels_names[i]}'") if labels_names else (lambda i: "0")
    trains = [_check(d, f"train dataset {i} ({label(i)})") for i, d in enumerate(train)]
    tests = [_check(d, f"test dataset {i} ({label(i)})") for i, d in enumerate(test)]

    for i, (tr, te) in enumerate(zip(trains, tests, strict=True)):
        f_train, f_test = tr.sequences[0].shape[1], te.sequences[0].shape[1]
        if f_train != f_test:
            raise DataError(
                f"dataset {i} ({label(i)}): train has {f_train} features but test has {f_test}"
            )
        unseen = set(np.unique(te.labels).tolist()) - set(np.unique(tr.labels).tolist())
        if unseen:
            raise DataError(
                f"dataset {i} ({label(i)}): test labels {sorted(unseen)} never occur in its "
                "training data"
            )

    valids: list[_Split] = []
    if validation > 0:
        pairs = [
            _stratified_split(tr, validation, seed, f"train dataset {i} ({label(i)})")
            for i, tr in enumerate(trains)
        ]
        trains, valids = [p[0] for p in pairs], [p[1] for p in pairs]
    if standardize:
        for i, tr in enumerate(trains):
            _standardize(tr, [tests[i], *(valids[i : i + 1] if valids else [])])

    if scenario == "task":
        maps = [{c: k for k, c in enumerate(_sorted_classes(tr.labels))} for tr in trains]
    else:
        union = _sorted_classes(np.concatenate([tr.labels for tr in trains]))
        maps = [{c: k for k, c in enumerate(union)}] * len(trains)

    splits = {"train": trains, "test": tests, **({"valid": valids} if valids else {})}
    n_features = [tr.sequences[0].shape[1] for tr in trains]
    scenario_obj, experience_names, classes, fingerprint = make_scenario(
        splits,
        maps,
        scenario=scenario,
        names=labels_names,
        n_experiences=n_experiences,
        class_order=class_order,
    )
    return SequenceBenchmark(
        scenario=scenario_obj,
        n_features=max(n_features),
        n_classes=max(len(m) for m in maps),
        experience_names=experience_names,
        scenario_name=scenario,
        features_per_experience=(
            n_features if scenario != "class" else n_features * len(experience_names)
        ),
        classes_per_experience=classes,
        label_maps=[dict(m) for m in maps[: len(trains)]],
        fingerprint=fingerprint,
    )
