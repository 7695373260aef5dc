"""TSCIL's class-incremental protocol (Qiao et al., KDD 2024), shared by har, uwave, dsa, wisdm.

From TSCIL's ``utils/setup_elements.py`` and ``utils/stream.py`` (repository ``zqiao11/TSCIL``):

- a dataset's classes are cut into tasks of ``classes_per_task`` (2 for all four here), in a class
  order that is shuffled for every run (``class_order: shuffled``, from the run's seed; TSCIL's
  default) or TSCIL's preset order (``class_order: preset``);
- datasets with 5 or more tasks (DSA, WISDM: 9 tasks) reserve the first 3 tasks of the order for
  tuning hyperparameters: ``stream: exp`` (default) trains on the remaining tasks, ``stream: val``
  on the 3 tuning tasks, ``stream: all`` on every task; smaller datasets (UCI-HAR: 3 tasks,
  UWave: 4) use all tasks in both.
- train/test splits as TSCIL's preparation scripts make them (per dataset, see its module).

Differences, all deliberate and documented per dataset: inputs are standardised per channel with
training statistics (``benchmark.standardize``; TSCIL feeds raw signals and normalises inside its
networks), and TSCIL's further 10% per-task hold-out for early stopping is clstm's
``benchmark.validation`` (off by default; clstm does not stop early).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import param
from clstm.data.cache import DownloadOptions

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

TUNING_TASKS = 3  # TSCIL's n_tasks_val for datasets of 5 or more tasks


@dataclass(frozen=True)
class TscilOptions(DownloadOptions):
    """Options of TSCIL's class-incremental streams."""

    class_order: Literal["shuffled", "preset"] = param(
        "shuffled", "shuffled: a new class order per run (from the run seed, as TSCIL); "
        "preset: TSCIL's fixed order"
    )  # fmt: skip
    stream: Literal["exp", "val", "all"] = param(
        "exp", "exp: the experiment tasks; val: TSCIL's 3 tuning tasks (datasets of 5+ tasks); "
        "all: every task"
    )  # fmt: skip

    def __post_init__(self) -> None:
        self._settle_scenario(("class", "task"))


def stream_classes(
    order: list[int], n_tasks: int, per_task: int, stream: str
) -> tuple[list[int], int]:
    """The classes of the chosen task stream (in arrival order) and its number of tasks."""
    start, end = 0, n_tasks
    if stream == "val":
        end = TUNING_TASKS if n_tasks >= 5 else n_tasks
    elif stream == "exp" and n_tasks >= 5:
        start = TUNING_TASKS
    return order[start * per_task : end * per_task], end - start


def build_stream(
    config: TscilOptions,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    n_classes: int,
    per_task: int,
    preset: list[int],
    run_seed: int,
    label: str,
) -> SequenceBenchmark:
    """The class-incremental stream TSCIL trains on, as an Avalanche benchmark."""
    from clstm.data.streams import split_stream

    if config.class_order == "shuffled":
        order = np.random.default_rng(run_seed).permutation(n_classes).tolist()
    else:
        order = list(preset)
    classes, n_tasks = stream_classes(order, n_classes // per_task, per_task, config.stream)
    keep_train, keep_test = np.isin(train[1], classes), np.isin(test[1], classes)
    return split_stream(
        (train[0][keep_train], train[1][keep_train]), (test[0][keep_test], test[1][keep_test]),
        n_experiences=n_tasks, scenario=config.scenario, class_order=classes, label=label,
        standardize=config.standardize, validation=config.validation,
    )  # fmt: skip


def holdout(X: np.ndarray, y: np.ndarray, fraction: float, stratify: bool):
    """TSCIL's preparation split: ``train_test_split(test_size=fraction, random_state=0)``
    (stratified for DSA and WISDM, not for UCI-HAR and UWave); returns (kept, held out)."""
    from sklearn.model_selection import train_test_split

    X_keep, X_out, y_keep, y_out = train_test_split(
        X, y, test_size=fraction, random_state=0, stratify=y if stratify else None
    )
    return (X_keep, y_keep), (X_out, y_out)


def build_pooled(
    config: TscilOptions, X: np.ndarray, y: np.ndarray, *, run_seed: int
) -> SequenceBenchmark:
    """DSA and WISDM: all windows pooled, split 75/25 stratified (TSCIL's preparation), 18
    classes in tasks of 2, labels in TSCIL's numbering (preset order 0..17)."""
    train, test = holdout(X, y, 0.25, stratify=True)
    return build_stream(
        config, train, test, n_classes=18, per_task=2, preset=list(range(18)),
        run_seed=run_seed, label="activities",
    )  # fmt: skip
