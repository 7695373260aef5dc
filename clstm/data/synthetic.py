"""The ``synthetic`` benchmark: conflicting, time-integrated rules over one input space.

Every experience draws sequences from the same noise distribution ``z_t ~ N(0, I_F)``, ``t < T_i``.
Experience ``e`` has its own rule: ``C`` orthonormal directions ``W_e`` (``F x C``), and a
sequence's label is the direction along which its time-average is largest,

    y = argmax_c ( (1/T_i) * sum_t z_t ) . W_e[:, c]

so the label depends on the whole sequence (reading the output at a padding step, or at any single
step, loses information), classes are balanced, and two experiences label the same input
independently: after learning experience ``e + 1`` a fine-tuned model answers experience ``e`` at
about chance level ``1/C``. The model sees ``x_t = z_t + s_e`` where ``s_e ~ N(0, shift^2 I)`` is a
constant offset per experience: with ``shift > 0`` a model can tell the experiences apart, so all
rules can be learnt together (what joint training and continual-learning methods aim for); with
``shift = 0`` the rules contradict each other outright.

It is not standardised by default (``standardize: false``): per-dataset scaling would remove the
offsets that make the experiences distinguishable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import MAX_SEED, StreamOptions, check_fits_in_memory, param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``synthetic`` benchmark."""

    name: Literal["synthetic"] = param("synthetic", "benchmark")
    n_experiences: int = param(3, "experiences (datasets) in the stream", ge=1)
    n_train: int = param(1000, "training sequences per experience", ge=2)
    n_test: int = param(500, "test sequences per experience", ge=1)
    seq_len: int | tuple[int, int] = param(
        20, "sequence length: an integer, or [min, max] for lengths drawn uniformly", ge=1
    )
    n_features: int = param(8, "input channels F", ge=1)
    n_classes: int = param(4, "classes C per experience (at most n_features)", ge=2)
    shift: float = param(
        1.0,
        "std of each experience's constant input offset (0: identical input distributions)",
        ge=0.0,
    )
    seed: int = param(
        0,
        "data seed: the data stay the same across run seeds unless this changes",
        ge=0,
        le=MAX_SEED,
    )
    standardize: bool = param(False, "standardise each dataset (off: it would erase the offsets)")

    def __post_init__(self) -> None:
        self._settle_scenario(("domain", "task"))
        if isinstance(self.seq_len, tuple) and self.seq_len[0] > self.seq_len[1]:
            raise ValueError(
                f"benchmark.seq_len: [min, max] needs min <= max, got {list(self.seq_len)}"
            )
        longest = self.seq_len if isinstance(self.seq_len, int) else self.seq_len[1]
        check_fits_in_memory(
            max(
                8.0 * self.n_features**2 * 3,  # the F x F random rotation and its QR
                # float64 sequences, their standardised copy and the padded float32 tensors
                (8.0 * 2 + 4) * self.n_experiences * (self.n_train + self.n_test) * longest
                * (self.n_features + 1),
            ),
            f"benchmark synthetic with n_experiences {self.n_experiences}, n_features "
            f"{self.n_features}, n_train {self.n_train}, n_test {self.n_test}, seq_len {longest}",
            "make benchmark.n_experiences, n_train, n_test, seq_len or n_features smaller",
        )  # fmt: skip
        if self.n_classes > self.n_features:
            raise ValueError(
                f"benchmark.n_classes ({self.n_classes}) must be <= benchmark.n_features "
                f"({self.n_features}): each class is one of F orthonormal directions"
            )


def generate(config: Config) -> tuple[list, list]:
    """``(train, test)``: per experience an ``(X, y)`` pair, ``X`` a list of ``(T_i, F)`` arrays."""
    lo, hi = (config.seq_len, config.seq_len) if isinstance(config.seq_len, int) else config.seq_len
    f, c = config.n_features, config.n_classes
    train, test = [], []
    for e in range(config.n_experiences):
        # One RNG stream per (experience, split): changing n_train leaves rules and tests alone.
        rng = np.random.default_rng([config.seed, e, 0])
        rule = np.linalg.qr(rng.standard_normal((f, f)))[0][:, :c]  # (F, C), orthonormal columns
        offset = rng.standard_normal(f) * config.shift  # (F,)
        for stream, (n, split) in enumerate(((config.n_train, train), (config.n_test, test)), 1):
            rng = np.random.default_rng([config.seed, e, stream])
            lengths = rng.integers(lo, hi + 1, size=n)  # (N,)
            z = [rng.standard_normal((t, f)) for t in lengths]  # N x (T_i, F)
            y = np.array([np.argmax(seq.mean(axis=0) @ rule) for seq in z])  # (N,)
            split.append(([seq + offset for seq in z], y))
    return train, test


def build(config: Config) -> SequenceBenchmark:
    """The synthetic stream as an Avalanche benchmark (one experience per rule)."""
    from clstm.data.arrays import benchmark_from_arrays

    train, test = generate(config)
    return benchmark_from_arrays(
        train,
        test,
        scenario=config.scenario,
        names=[f"rule{e}" for e in range(config.n_experiences)],
        standardize=config.standardize,
        validation=config.validation,
        seed=config.seed,
    )
