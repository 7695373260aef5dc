"""The two classic ways of turning one labelled dataset into a stream: Split and Permuted.

Used by ``seq_digits``, ``smnist``/``pmnist`` and ``mnist1d``, so every Split benchmark groups
classes the same way and every Permuted one draws its permutations the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from clstm.data.sequences import SequenceBenchmark, split_counts


def class_groups(order: Sequence[int], n_experiences: int) -> list[list[int]]:
    """``order`` cut into ``n_experiences`` consecutive groups (leftovers to the first ones)."""
    groups, start = [], 0
    for count in split_counts(len(order), n_experiences):
        groups.append(list(order[start : start + count]))
        start += count
    return groups


def split_stream(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    n_experiences: int,
    scenario: str,
    class_order: Sequence[int] | None = None,
    label: str = "classes",
    **options,
) -> SequenceBenchmark:
    """Split: classes arrive in groups, in ``class_order`` (default sorted).

    ``class``: one head over all classes seen (Avalanche's ``class_incremental_benchmark``);
    ``task``: one dataset per group with its own task label and head.
    """
    from clstm.data.arrays import benchmark_from_arrays

    order = list(class_order) if class_order is not None else sorted(np.unique(train[1]).tolist())
    if scenario == "class":
        return benchmark_from_arrays(
            [train], [test], scenario="class", n_experiences=n_experiences,
            class_order=None if class_order is None else order,
            **options,
        )  # fmt: skip
    trains, tests, names = [], [], []
    for group in class_groups(order, n_experiences):
        in_train, in_test = np.isin(train[1], group), np.isin(test[1], group)
        trains.append((train[0][in_train], train[1][in_train]))
        tests.append((test[0][in_test], test[1][in_test]))
        names.append(f"{label} " + ",".join(map(str, group)))
    return benchmark_from_arrays(trains, tests, scenario=scenario, names=names, **options)


def permutations(size: int, n_experiences: int, seed: int, first_identity: bool) -> list:
    """One fixed permutation of ``range(size)`` per experience, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return [
        np.arange(size) if (e == 0 and first_identity) else rng.permutation(size)
        for e in range(n_experiences)
    ]


def permuted_stream(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    perms: Sequence[np.ndarray],
    apply: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scenario: str,
    **options,
) -> SequenceBenchmark:
    """Permuted: every experience holds the whole dataset under its own fixed permutation
    (``apply(X, perm)`` returns the permuted sequences); domain- or task-incremental."""
    from clstm.data.arrays import benchmark_from_arrays

    trains = [(apply(train[0], p), train[1]) for p in perms]
    tests = [(apply(test[0], p), test[1]) for p in perms]
    names = [f"perm{e}" for e in range(len(perms))]
    return benchmark_from_arrays(trains, tests, scenario=scenario, names=names, **options)
