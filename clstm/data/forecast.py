"""The ``forecast_regimes`` benchmark: continual forecasting of series whose dynamics change.

Experience ``e`` is a regime: ``n_series`` series of ``length`` steps from its own noisy
oscillator, a stable AR(2) process ``x_t = a1 x_{t-1} + a2 x_{t-2} + eps_t`` with
``a1 = 2 r cos(w_e)``, ``a2 = -r^2`` (complex roots of modulus ``r`` < 1: a damped oscillation
of angular frequency ``w_e``, kept going by the noise ``eps_t ~ N(0, noise^2)``) plus a seasonal
term ``amplitude * sin(2 pi t / period_e + phase)`` of the regime's own period. The frequencies
and periods differ between regimes, so one context continues differently in each: a forecaster
tuned to the last regime mispredicts the earlier ones (fine-tuning forgets), while a model that
reads the regime from its context can serve all of them (joint training shows it).

Windows of ``context`` steps predict the next ``horizon`` values (``regression`` targets,
:mod:`clstm.targets`). Each series is split in time: its first ``1 - test_fraction`` of steps
give the training windows (inputs and targets inside it), the rest the test windows (targets
after the split; their contexts may reach back into the training part, as a forecast's past
does): no training target lies in the test period. Values are standardised per experience with
the mean and standard deviation of that experience's training part only (errors are in those
units). Generated from ``seed`` alone, the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import MAX_SEED, StreamOptions, check_fits_in_memory, param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

TARGET = "regression"  # clstm.targets: the next `horizon` values of the series


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``forecast_regimes`` benchmark."""

    name: Literal["forecast_regimes"] = param("forecast_regimes", "benchmark")
    n_experiences: int = param(4, "regimes (experiences)", ge=1)
    n_series: int = param(16, "series per regime", ge=1)
    length: int = param(400, "steps per series", ge=4)
    context: int = param(32, "input steps of a window", ge=1)
    horizon: int = param(4, "steps forecast after the context", ge=1)
    test_fraction: float = param(0.25, "last part of each series (in time) used for testing",
                                 gt=0.0, lt=1.0)  # fmt: skip
    stride: int = param(2, "steps between consecutive windows", ge=1)
    radius: float = param(0.97, "modulus r of the AR(2) roots (< 1: stable)", gt=0.0, lt=1.0)
    noise: float = param(0.3, "standard deviation of the AR(2) innovations", ge=0.0)
    amplitude: float = param(1.0, "amplitude of the seasonal term", ge=0.0)
    seed: int = param(0, "data seed", ge=0, le=MAX_SEED)
    standardize: bool = param(
        True, "standardise each regime with the mean/std of its training part (no leakage)"
    )

    def __post_init__(self) -> None:
        self._settle_scenario(("domain", "task"))
        if self.validation:
            raise ValueError("benchmark.validation: forecast_regimes has no validation split")
        train_steps = int(self.length * (1 - self.test_fraction))
        if train_steps < self.context + self.horizon:
            raise ValueError(
                f"benchmark.length: the training part of a series ({train_steps} steps) is "
                f"shorter than context + horizon ({self.context + self.horizon}); use a longer "
                "length or a smaller test_fraction"
            )
        if self.length - train_steps < self.horizon:
            raise ValueError("benchmark.test_fraction leaves fewer test steps than the horizon")
        check_fits_in_memory(
            self.n_experiences * self.n_series * self.length / self.stride
            * (self.context * 2 + self.horizon) * 4,
            f"the forecasting windows (benchmark.n_experiences {self.n_experiences} x n_series "
            f"{self.n_series} x length {self.length} / stride {self.stride}, context "
            f"{self.context}, horizon {self.horizon})",
            "make benchmark.n_experiences, n_series or length smaller, or stride larger",
        )  # fmt: skip

    @property
    def train_steps(self) -> int:
        return int(self.length * (1 - self.test_fraction))


def regime(config: Config, e: int) -> tuple[float, float]:
    """``(w_e, period_e)``: regime ``e``'s AR(2) angular frequency and seasonal period."""
    frequencies = np.linspace(0.15, 1.2, max(config.n_experiences, 2))
    periods = np.linspace(40.0, 9.0, max(config.n_experiences, 2))
    return float(frequencies[e]), float(periods[e])


def series(config: Config, e: int) -> np.ndarray:
    """``(n_series, length)`` values of regime ``e`` (a burn-in of 100 steps is discarded)."""
    w, period = regime(config, e)
    a1, a2 = 2 * config.radius * np.cos(w), -(config.radius**2)
    rng = np.random.default_rng([config.seed, e])
    burn = 100
    eps = rng.standard_normal((config.n_series, burn + config.length)) * config.noise
    z = np.zeros_like(eps)
    for t in range(2, z.shape[1]):
        z[:, t] = a1 * z[:, t - 1] + a2 * z[:, t - 2] + eps[:, t]
    t = np.arange(config.length)
    phase = rng.uniform(0, 2 * np.pi, (config.n_series, 1))
    return z[:, burn:] + config.amplitude * np.sin(2 * np.pi * t / period + phase)


def windows(values: np.ndarray, starts: range, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(N, context, 1)`` and targets ``(N, horizon)`` of the windows starting at
    ``starts`` in every series."""
    c, h = config.context, config.horizon
    x = np.stack([values[:, s : s + c] for s in starts], axis=1)  # (S, W, c)
    y = np.stack([values[:, s + c : s + c + h] for s in starts], axis=1)  # (S, W, h)
    return x.reshape(-1, c, 1).astype(np.float32), y.reshape(-1, h).astype(np.float32)


def window_times(starts, context: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """``(arrival, observed)`` of windows starting at ``starts`` (series running side by side
    from time 0): the time of each window's last input step and of its last target."""
    starts = np.asarray(starts)
    return starts + context - 1, starts + context + horizon - 1


def split(config: Config, e: int):
    """Regime ``e``'s training and test windows, standardised with training statistics."""
    values = series(config, e)
    cut, c, h = config.train_steps, config.context, config.horizon
    if config.standardize:
        train_part = values[:, :cut]
        values = (values - train_part.mean()) / train_part.std()
    train = windows(values, range(0, cut - c - h + 1, config.stride), config)
    # test windows: every target after the cut (their contexts may start before it)
    first = cut - c
    test = windows(values, range(first, config.length - c - h + 1, config.stride), config)
    return train, test


def build(config: Config) -> SequenceBenchmark:
    """One experience per regime."""
    from clstm.data.stepwise import target_benchmark

    train, test, times = [], [], []
    c, h = config.context, config.horizon
    starts = np.tile(range(0, config.train_steps - c - h + 1, config.stride), config.n_series)
    for e in range(config.n_experiences):
        (x_tr, y_tr), (x_te, y_te) = split(config, e)
        train.append((x_tr, np.full(len(x_tr), config.context), y_tr))
        test.append((x_te, np.full(len(x_te), config.context), y_te))
        times.append(window_times(starts, c, h))  # the rows are series-major, as windows() stacks
    bench = target_benchmark(
        train,
        test,
        target=TARGET,
        n_outputs=config.horizon,
        names=[f"regime{e}" for e in range(config.n_experiences)],
        scenario=config.scenario,
        tag=repr(config),
    )
    bench.arrival_times = times
    return bench
