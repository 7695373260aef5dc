"""The ``cued_recall`` benchmark: long series whose class is shown only at their start.

Each series is ``n_windows * window`` steps of noise ``N(0, I_F)``; its first ``cue_steps`` steps
also carry a cue, the pattern ``P_e[c]`` of its class ``c`` (random, per experience). The series is
cut into ``n_windows`` consecutive windows and every window is labelled ``c``. Only the first window
contains the cue, so a model that starts every window from a zero state answers the others at
chance: its best accuracy is ``(1 + (n_windows - 1) / C) / n_windows``. A stateful model
(``train.state: stateful``), which carries its hidden state from window to window of the same
series, can answer them all. Experiences use different cue patterns, so the class of a series is
read differently in each one (fine-tuning forgets).

Samples are stored series-major (window ``w`` of series ``s`` at index ``s * n_windows + w``),
which is what :class:`clstm.data.sampling.ConsecutiveWindowsBatchSampler` relies on.
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
    """Options of the ``cued_recall`` benchmark."""

    name: Literal["cued_recall"] = param("cued_recall", "benchmark")
    n_experiences: int = param(3, "experiences (cue codes)", ge=1)
    n_series_train: int = param(256, "training series per experience", ge=1)
    n_series_test: int = param(128, "test series per experience", ge=1)
    n_windows: int = param(4, "windows per series", ge=1)
    window: int = param(10, "steps per window", ge=1)
    cue_steps: int = param(3, "steps at the start of a series that carry the cue", ge=1)
    n_features: int = param(4, "input channels", ge=1)
    n_classes: int = param(4, "classes", ge=2)
    cue_strength: float = param(3.0, "norm of the cue pattern added to the noise", gt=0.0)
    seed: int = param(0, "data seed", ge=0, le=MAX_SEED)
    standardize: bool = param(False, "standardise each dataset (off: the data are already N(0, 1))")

    def __post_init__(self) -> None:
        self._settle_scenario(("domain", "task"))
        if self.cue_steps > self.window:
            raise ValueError("benchmark.cue_steps must fit in the first window (<= window)")
        if self.validation:
            raise ValueError(
                "benchmark.validation: cued_recall keeps whole series together and has no "
                "validation split; set it to 0"
            )


def generate(config: Config):
    """``(train, test)``: per experience, windows ``(N * n_windows, window, F)`` and labels."""
    f, c, w = config.n_features, config.n_classes, config.window
    train, test = [], []
    for e in range(config.n_experiences):
        rng = np.random.default_rng([config.seed, e, 0])
        cues = rng.standard_normal((c, f))
        cues *= config.cue_strength / np.linalg.norm(cues, axis=1, keepdims=True)  # (C, F)
        for stream, (n, split) in enumerate(
            ((config.n_series_train, train), (config.n_series_test, test)), 1
        ):
            rng = np.random.default_rng([config.seed, e, stream])
            labels = np.arange(n) % c
            rng.shuffle(labels)
            series = rng.standard_normal((n, config.n_windows * w, f))  # (N, L, F)
            series[:, : config.cue_steps] += cues[labels][:, None, :]
            windows = series.reshape(n * config.n_windows, w, f)  # series-major
            split.append((windows, np.repeat(labels, config.n_windows)))
    return train, test


def build(config: Config) -> SequenceBenchmark:
    """The cued-recall stream; ``windows_per_series`` tells stateful training how to batch it."""
    from clstm.data.arrays import benchmark_from_arrays

    train, test = generate(config)
    bench = benchmark_from_arrays(
        train,
        test,
        scenario=config.scenario,
        names=[f"cues{e}" for e in range(config.n_experiences)],
        standardize=config.standardize,
    )
    bench.windows_per_series = config.n_windows
    return bench
