"""The ``seq_digits`` benchmarks: scikit-learn's 8x8 digits read row by row (8 steps x 8 features).

Small, offline counterparts of the sequential-MNIST benchmarks of RNN continual-learning papers:

- ``split``: the ten digits in ``n_experiences`` groups of classes, in order (0,1), (2,3), ...
  Class-incremental by default (one head over all classes seen, Avalanche's
  ``class_incremental_benchmark``); task-incremental with ``scenario: task``.
- ``permuted``: the whole dataset in every experience, each with its own fixed random permutation of
  the 64 pixels (experience 0 unpermuted). Domain-incremental by default; ``task`` also works.

Pixels are scaled to [0, 1] (grey levels / 16); the stratified train/test split is seeded by
``benchmark.seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import MAX_SEED, StreamOptions, param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``seq_digits`` benchmark."""

    name: Literal["seq_digits"] = param("seq_digits", "benchmark")
    variant: Literal["split", "permuted"] = param(
        "split", "split: classes arrive in groups; permuted: a pixel permutation per experience"
    )
    n_experiences: int = param(5, "experiences (split: groups of classes, at most 10)", ge=1)
    test_size: float = param(0.3, "fraction of the 1797 digits used for testing", gt=0.0, lt=1.0)
    seed: int = param(0, "seed of the train/test split and of the permutations", ge=0, le=MAX_SEED)
    standardize: bool = param(False, "standardise per feature (pixels are already in [0, 1])")

    def __post_init__(self) -> None:
        natural = ("class", "task") if self.variant == "split" else ("domain", "task")
        self._settle_scenario(natural)
        if self.variant == "split" and self.n_experiences > 10:
            raise ValueError(
                f"benchmark.n_experiences: split digits have 10 classes, got {self.n_experiences}"
            )


def load(config: Config):
    """Train and test digits as ``(N, 8, 8)`` float arrays in [0, 1] with integer labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.images.astype(np.float64) / 16.0  # (1797, 8, 8): 8 steps (rows) x 8 features
    return train_test_split(
        X, digits.target, test_size=config.test_size, stratify=digits.target,
        random_state=config.seed,
    )  # fmt: skip


def build(config: Config) -> SequenceBenchmark:
    """The configured digits stream as an Avalanche benchmark."""
    from clstm.data.streams import permutations, permuted_stream, split_stream

    X_train, X_test, y_train, y_test = load(config)
    options = dict(
        scenario=config.scenario,
        standardize=config.standardize,
        validation=config.validation,
        seed=config.seed,
    )
    if config.variant == "split":
        return split_stream(
            (X_train, y_train), (X_test, y_test), n_experiences=config.n_experiences,
            label="digits", **options,
        )  # fmt: skip
    perms = permutations(64, config.n_experiences, config.seed, first_identity=True)
    return permuted_stream(
        (X_train, y_train), (X_test, y_test), perms=perms, **options,
        apply=lambda X, p: X.reshape(len(X), 64)[:, p].reshape(len(X), 8, 8),
    )  # fmt: skip
