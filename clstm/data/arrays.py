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
    """One dataset split after validation: right-padded ``x`` ``(N, T, F)`` (zeros after each
    sequence's end), ``lengths`` ``(N,)`` and raw labels. Dense arrays, not one object per
    sequence, so 60k MNIST sequences cost one array (and seconds to check)."""

    x: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    @property
    def n_features(self) -> int:
        return self.x.shape[2]

    def mask(self) -> np.ndarray:
        """``(N, T)`` boolean: True at real steps."""
        return np.arange(self.x.shape[1])[None, :] < self.lengths[:, None]

    def take(self, index: np.ndarray) -> _Split:
        return _Split(self.x[index], self.lengths[index], self.labels[index])


def _float_dtype(dtype: np.dtype) -> type:
    """float32 for data that are float32 or integers (e.g. uint8 pixels), else float64: float64
    inputs keep their precision through standardisation (numbers match earlier versions)."""
    return np.float32 if dtype == np.float32 or dtype.kind in "iub" else np.float64


def _check_values(x: np.ndarray, lengths: np.ndarray, where: str, index=None) -> None:
    """Finite, float32-representable values; errors name the first offending sequence."""
    name = (lambda i: i) if index is None else (lambda i: index[i])
    bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{where}: sequence {name(i)} contains NaN or infinite values")
    big = np.abs(x).reshape(len(x), -1).max(axis=1) > FLOAT32_MAX if x.size else bad
    if big.any():
        i = int(np.argmax(big))
        raise DataError(
            f"{where}: sequence {name(i)} has a value of magnitude {np.abs(x[i]).max():.3g}, "
            f"beyond float32 (max {FLOAT32_MAX:.3g}), which the model computes in; rescale the data"
        )


def _dense(X: np.ndarray, where: str, copy: bool) -> tuple[np.ndarray, np.ndarray]:
    """An ``(N, T, F)`` numeric array as float data and lengths (all ``T``), checked."""
    if X.dtype.kind not in "iubf":
        raise DataError(f"{where}: X is not numeric (dtype {X.dtype})")
    if len(X) == 0:
        raise DataError(f"{where}: the dataset is empty")
    if X.shape[1] == 0:
        raise DataError(f"{where}: sequence 0 has length 0")
    if X.shape[2] == 0:
        raise DataError(f"{where}: sequences have 0 features")
    # standardising works in place, so it gets a copy (the caller's X is never changed); without
    # it the data are only read, and a float array of the right type is used as it is
    x = np.array(X, dtype=_float_dtype(X.dtype), copy=True if copy else None)
    lengths = np.full(len(x), x.shape[1], dtype=np.int64)
    _check_values(x, lengths, where)
    return x, lengths


def _as_sequences(X: Any, where: str, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(N, T, F)`` array or list of ``(T_i, F)`` arrays -> padded ``(N, T, F)`` and lengths."""
    if hasattr(X, "detach"):  # a torch tensor, possibly requiring grad or on a GPU
        X = X.detach().cpu()
    if hasattr(X, "__array__"):  # numpy arrays, torch tensors, ...
        X = np.asarray(X)
        if X.ndim == 3 and X.dtype != object:
            return _dense(X, where, copy)
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
        sequences.append(seq)
    if n_features == 0:
        raise DataError(f"{where}: sequences have 0 features")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    x = np.zeros((len(sequences), int(lengths.max()), n_features), dtype=np.float64)
    for i, seq in enumerate(sequences):
        x[i, : len(seq)] = seq
    _check_values(x, lengths, where)
    return x, lengths


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


def _check(data: Any, where: str, copy: bool = True) -> _Split:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise DataError(f"{where}: expected an (X, y) pair")
    X, y = data
    x, lengths = _as_sequences(X, where, copy)
    return _Split(x, lengths, _as_labels(y, len(x), where))


def _sorted_classes(values: np.ndarray) -> list:
    """Sorted unique labels; strings that all read as integers sort numerically ('2' < '10')."""
    unique = [str(v) for v in np.unique(values)]
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def _stratified_split(split: _Split, fraction: float, seed: int, where: str):
    from sklearn.model_selection import train_test_split

    index = np.arange(len(split.labels))
    try:
        keep, hold = train_test_split(
            index, test_size=fraction, stratify=split.labels, random_state=seed
        )
    except ValueError as exc:
        raise DataError(f"{where}: cannot split off a stratified validation set: {exc}") from None
    return split.take(np.sort(keep)), split.take(np.sort(hold))


def _standardize(train: _Split, others: Sequence[_Split]) -> None:
    """Per-feature standardisation fitted on ``train``'s real time steps only (no leakage)."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train.x[train.mask()])  # real steps, in sequence order
    for split in (train, *others):
        mask = split.mask()
        split.x[mask] = scaler.transform(split.x[mask])  # padding stays 0


def _names(names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return [f"exp{i}" for i in range(count)]
    names = [str(n) for n in names]
    if len(names) != count:
        raise DataError(f"names has {len(names)} entries for {count} datasets")
    if len(set(names)) != len(names):
        raise DataError(f"names must be unique, got {names}")
    return names


def _check_arguments(train: list, test: list, scenario: str, validation) -> None:
    if scenario not in SCENARIOS:
        raise DataError(f"scenario must be one of {', '.join(SCENARIOS)}, got '{scenario}'")
    if isinstance(validation, bool) or not isinstance(validation, (int, float, np.number)):
        raise DataError(
            f"validation must be a number in [0, 1) (e.g. 0.2), got {validation!r} "
            f"({type(validation).__name__})"
        )
    if not 0.0 <= validation < 1.0:
        raise DataError(f"validation must be in [0, 1), got {validation}")
    if not train:
        raise DataError("train is empty: give at least one (X, y) dataset")
    if len(train) != len(test):
        raise DataError(f"train has {len(train)} datasets but test has {len(test)}")


def _checked_datasets(train: list, test: list, label, standardize: bool):
    """``(trains, tests)``: every dataset checked, and each test set against its training set
    (the same features, no class it never saw)."""
    trains = [
        _check(d, f"train dataset {i} ({label(i)})", standardize) for i, d in enumerate(train)
    ]
    tests = [_check(d, f"test dataset {i} ({label(i)})", standardize) for i, d in enumerate(test)]
    for i, (tr, te) in enumerate(zip(trains, tests, strict=True)):
        f_train, f_test = tr.n_features, te.n_features
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
    return trains, tests


def _label_maps(trains: list, scenario: str, several: bool) -> list[dict]:
    """Each dataset's label -> class index (see :func:`benchmark_from_arrays`)."""
    if scenario == "task":
        return [{c: k for k, c in enumerate(_sorted_classes(tr.labels))} for tr in trains]
    if several:  # dataset i's classes follow those of datasets 0..i-1, in arrival order
        maps, offset = [], 0
        for tr in trains:
            maps.append({c: offset + k for k, c in enumerate(_sorted_classes(tr.labels))})
            offset += len(maps[-1])
        return maps
    union = _sorted_classes(np.concatenate([tr.labels for tr in trains]))
    return [{c: k for k, c in enumerate(union)}] * len(trains)


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
        experience index, one head per experience) or ``"class"``: one dataset split into
        experiences by classes with Avalanche's ``class_incremental_benchmark``, or, given
        several datasets, one experience per dataset, each with its own classes (dataset ``i``'s
        classes numbered after those of datasets ``0..i-1``), one growing head, no task labels.
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
    scenario, per dataset with offsets in the class scenario over several datasets, over all
    experiences otherwise (so a label means the same class in every experience) - and the
    mappings are kept in ``SequenceBenchmark.label_maps``.
    """
    from clstm.data.sequences import SequenceBenchmark, make_scenario

    train, test = list(train), list(test)
    _check_arguments(train, test, scenario, validation)
    # class scenario over several datasets: one experience per dataset, each with its own classes
    # (labels are not shared between datasets), one growing head over all classes seen
    several = scenario == "class" and len(train) > 1
    if several and (n_experiences is not None or class_order is not None):
        raise DataError(
            "n_experiences and class_order split one dataset by classes; with several datasets "
            "in the class scenario each dataset is one experience with its own classes"
        )
    labels_names = _names(names, len(train)) if scenario != "class" or several else None
    label = (lambda i: f"'{labels_names[i]}'") if labels_names else (lambda i: "0")
    trains, tests = _checked_datasets(train, test, label, standardize)
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

    maps = _label_maps(trains, scenario, several)

    splits = {"train": trains, "test": tests, **({"valid": valids} if valids else {})}
    n_features = [tr.n_features for tr in trains]
    scenario_obj, experience_names, classes, fingerprint = make_scenario(
        splits,
        maps,
        scenario="domain" if several else scenario,  # datasets as experiences, no task labels
        names=labels_names,
        n_experiences=n_experiences,
        class_order=class_order,
    )
    return SequenceBenchmark(
        scenario=scenario_obj,
        n_features=max(n_features),
        n_classes=sum(len(m) for m in maps) if several else max(len(m) for m in maps),
        experience_names=experience_names,
        scenario_name=scenario,
        features_per_experience=(
            n_features if scenario != "class" or several else n_features * len(experience_names)
        ),
        classes_per_experience=classes,
        label_maps=[dict(m) for m in maps[: len(trains)]],
        fingerprint=fingerprint,
    )
