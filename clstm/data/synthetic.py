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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from clstm.config import param
from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config:
    """Options of the ``synthetic`` benchmark."""

    name: Literal["synthetic"] = param("synthetic", "benchmark")
    n_experiences: int = param(3, "experiences (datasets) in the stream", ge=1)
    n_train: int = param(1000, "training sequences per experience", ge=1)
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
        0, "data seed: the data stay the same across run seeds unless this changes", ge=0
    )

    def __post_init__(self) -> None:
        if isinstance(self.seq_len, tuple) and self.seq_len[0] > self.seq_len[1]:
            raise ValueError(
                f"benchmark.seq_len: [min, max] needs min <= max, got {list(self.seq_len)}"
            )
        if self.n_classes > self.n_features:
            raise ValueError(
                f"benchmark.n_classes ({self.n_classes}) must be <= benchmark.n_features "
                f"({self.n_features}): each class is one of F orthonormal directions"
            )


def generate(config: Config) -> tuple[list, list]:
    """Generate ``(train, test)``: lists of ``(x, y)`` with ``x`` padded ``(N, T_max, F + 1)``."""
    import torch

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
            real = np.arange(hi)[None, :] < lengths[:, None]  # (N, T) True at real steps
            z = rng.standard_normal((n, hi, f)) * real[..., None]  # (N, T, F), zero at padding
            y = np.argmax((z.sum(axis=1) / lengths[:, None]) @ rule, axis=1)  # (N,)
            x = np.concatenate([(z + offset) * real[..., None], real[..., None]], axis=-1)
            split.append((torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)))
    return train, test


def build(config: Config) -> SequenceBenchmark:
    """The synthetic stream as an Avalanche benchmark (one experience per rule)."""
    from clstm.data.sequences import benchmark_from_padded

    train, test = generate(config)
    names = [f"rule{e}" for e in range(config.n_experiences)]
    return benchmark_from_padded(train, test, names)
