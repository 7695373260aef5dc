"""The ``pmnist`` benchmark: Permuted MNIST read as sequences (row by row or pixel by pixel).

Every experience holds all ten digits (the official 60,000/10,000 split) under its own fixed
random permutation drawn from ``benchmark.seed``; domain-incremental by default (one shared head),
task-incremental with ``scenario: task``.

- ``permutation: pixels`` (default): the 784 pixels are permuted, then read in the configured way
  (the classic Permuted MNIST);
- ``permutation: steps``: the sequence's steps are permuted (whole rows for ``read: row``, groups
  of ``pixels_per_step`` pixels for ``read: pixel``), as in Cossu et al.'s code.

``first_identity: true`` leaves experience 0 unpermuted (off by default: Cossu et al. and
Avalanche's ``PermutedMNIST`` permute every experience). Files and reading: :mod:`clstm.data.mnist`.
Memory: each experience is a full copy of MNIST (about 190 MB of float32 per experience for the
training set, twice that once padded with the mask channel in pixel reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import param
from clstm.data import mnist

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config(mnist.MnistOptions):
    """Options of the ``pmnist`` benchmark."""

    name: Literal["pmnist"] = param("pmnist", "benchmark")
    n_experiences: int = param(10, "permutations (experiences)", ge=1)
    permutation: Literal["pixels", "steps"] = param(
        "pixels", "pixels: permute the 784 pixels; steps: permute the steps (Cossu et al.)"
    )
    first_identity: bool = param(False, "experience 0 unpermuted")

    def __post_init__(self) -> None:
        self._settle_scenario(("domain", "task"))
        self._check_reading()


def build(config: Config) -> SequenceBenchmark:
    """Permuted MNIST as an Avalanche benchmark."""
    from clstm.data.streams import permutations, permuted_stream

    data = mnist.load(config.root, config.download, "pmnist")
    (train_images, y_train), (test_images, y_test) = data["train"], data["test"]
    width = config.step_width
    if config.permutation == "pixels":
        size = mnist.PIXELS

        def apply(images: np.ndarray, perm: np.ndarray) -> np.ndarray:
            flat = images.reshape(len(images), -1)[:, perm]
            return mnist.as_sequences(flat.reshape(len(images), 28, 28), config)

    else:
        size = mnist.PIXELS // width

        def apply(images: np.ndarray, perm: np.ndarray) -> np.ndarray:
            return mnist.as_sequences(images, config)[:, perm]

    perms = permutations(size, config.n_experiences, config.seed, config.first_identity)
    return permuted_stream(
        (train_images, y_train), (test_images, y_test), perms=perms, apply=apply,
        scenario=config.scenario, standardize=config.standardize,
        validation=config.validation, seed=config.seed,
    )  # fmt: skip
