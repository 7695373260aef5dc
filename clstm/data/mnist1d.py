"""The ``mnist1d`` benchmark: MNIST-1D (Greydanus & Kobak, ICML 2024) as a continual stream.

MNIST-1D sequences are 40 steps x 1 feature, ten classes, generated offline by the ``mnist1d``
package from its ten built-in 1-D digit templates (``pip install 'clstm[mnist1d]'``). clstm
generates them with the package's canonical arguments (``get_dataset_args()``: 5,000 samples,
train split 0.8 -> 4,000 train / 1,000 test, seed 42), so the data are those of the paper's
published dataset; nothing is downloaded. The package standardises the whole dataset already
(``standardize`` is off by default).

- ``variant: split``: the ten classes in ``n_experiences`` groups, (0,1), (2,3), ...;
  class-incremental by default (``task`` also works).
- ``variant: permuted``: all classes in every experience, the 40 steps under a fixed random
  permutation per experience (from ``benchmark.seed``); domain-incremental by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import MAX_SEED, StreamOptions, param
from clstm.errors import DataError

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``mnist1d`` benchmark."""

    name: Literal["mnist1d"] = param("mnist1d", "benchmark")
    variant: Literal["split", "permuted"] = param(
        "split", "split: classes arrive in groups; permuted: a step permutation per experience"
    )
    n_experiences: int = param(5, "experiences (split: groups of classes, at most 10)", ge=1)
    first_identity: bool = param(False, "permuted: experience 0 unpermuted")
    seed: int = param(0, "seed of the permutations", ge=0, le=MAX_SEED)
    standardize: bool = param(False, "standardise per feature (the package already does)")

    def __post_init__(self) -> None:
        natural = ("class", "task") if self.variant == "split" else ("domain", "task")
        self._settle_scenario(natural)
        if self.variant == "split" and self.n_experiences > 10:
            raise ValueError(
                f"benchmark.n_experiences: MNIST-1D has 10 classes, got {self.n_experiences}"
            )


def generate() -> dict[str, np.ndarray]:
    """The canonical MNIST-1D dataset (``x``, ``y``, ``x_test``, ``y_test``), generated offline.

    ``mnist1d`` seeds Python's and NumPy's global generators (``set_seed(42)``); their states are
    restored afterwards so that building the benchmark does not change a run's randomness.
    """
    import random

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DataError(
            "the mnist1d benchmark needs the mnist1d package: pip install 'clstm[mnist1d]'"
        ) from None
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        return make_dataset(get_dataset_args())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def build(config: Config) -> SequenceBenchmark:
    """MNIST-1D as an Avalanche benchmark."""
    from clstm.data.streams import permutations, permuted_stream, split_stream

    data = generate()
    train = (data["x"][..., None].astype(np.float64), data["y"].astype(np.int64))
    test = (data["x_test"][..., None].astype(np.float64), data["y_test"].astype(np.int64))
    options = dict(
        scenario=config.scenario, standardize=config.standardize,
        validation=config.validation, seed=config.seed,
    )  # fmt: skip
    if config.variant == "split":
        return split_stream(train, test, n_experiences=config.n_experiences, **options)
    perms = permutations(40, config.n_experiences, config.seed, config.first_identity)
    return permuted_stream(train, test, perms=perms, apply=lambda X, p: X[:, p], **options)
