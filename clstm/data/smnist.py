"""The ``smnist`` benchmark: Split MNIST read as sequences (row by row or pixel by pixel).

The ten digits arrive in ``n_experiences`` groups, in ``class_order`` (default 0..9: (0,1),
(2,3), ... as in Cossu et al. 2021); class-incremental by default (one head over all digits
seen), task-incremental with ``scenario: task``. The official 60,000/10,000 train/test split.
``permutation: steps`` applies one fixed random permutation of the steps to every image of every
experience, as Cossu et al.'s code does for Split MNIST (``sequential: false``). Files, reading and
download: :mod:`clstm.data.mnist`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from clstm.config.schema import param
from clstm.data import mnist

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config(mnist.MnistOptions):
    """Options of the ``smnist`` benchmark."""

    name: Literal["smnist"] = param("smnist", "benchmark")
    n_experiences: int = param(5, "groups of digits (at most 10)", ge=1, le=10)
    class_order: tuple[int, ...] | None = param(
        None, "the order in which digits arrive (default 0..9)"
    )
    permutation: Literal["none", "steps"] = param(
        "none", "steps: one fixed permutation of the steps for all experiences (Cossu et al.)"
    )

    def __post_init__(self) -> None:
        self._settle_scenario(("class", "task"))
        self._check_reading()
        if self.class_order is not None and sorted(self.class_order) != list(range(10)):
            raise ValueError(
                f"benchmark.class_order: list each digit 0-9 once, got {list(self.class_order)}"
            )


def build(config: Config) -> SequenceBenchmark:
    """Split MNIST as an Avalanche benchmark."""
    from clstm.data.streams import permutations, split_stream

    data = mnist.load(config.root, config.download)
    (train_images, y_train), (test_images, y_test) = data["train"], data["test"]
    X_train = mnist.as_sequences(train_images, config)
    X_test = mnist.as_sequences(test_images, config)
    if config.permutation == "steps":
        (perm,) = permutations(X_train.shape[1], 1, config.seed, first_identity=False)
        X_train, X_test = X_train[:, perm], X_test[:, perm]
    return split_stream(
        (X_train, y_train), (X_test, y_test),
        n_experiences=config.n_experiences, scenario=config.scenario,
        class_order=config.class_order, label="digits", standardize=config.standardize,
        validation=config.validation, seed=config.seed,
    )  # fmt: skip
