"""The ``forecast_aeon`` benchmark: continual forecasting of the real series that ship with aeon.

Experience ``e`` is one source of series from the ``aeon`` wheel's data folder, read offline
(nothing is downloaded): a forecaster meets series of different origin, frequency and dynamics
one after another, as a deployed model meets new clients or sensors. The sources:

- ``airline``: monthly international airline passengers 1949-60 (Box & Jenkins), 144 steps;
- ``pbs``: monthly PBS scripts (Australian prescriptions), 204 steps;
- ``lynx``: yearly Canadian lynx trappings 1821-1934 (a ~10-year cycle), 114 steps;
- ``shampoo``: monthly shampoo sales over three years, 36 steps;
- ``solar``: half-hourly GB solar generation over six days (a daily cycle), 289 steps;
- ``uschange``: quarterly US percentage changes 1970-2016 of consumption, income, production,
  savings and unemployment, 5 series of 187 steps;
- ``m1_yearly``: the 181 yearly series of the M1 competition (15-58 steps each; not in the
  default stream: with a 12-step context most give one to three windows, and their test periods
  grow beyond anything in training, so their errors, ~6 where the others' are below 2, swamp the
  averages).

Windows of ``context`` steps predict the next ``horizon`` values (``regression`` targets,
:mod:`clstm.targets`). Each series is split in time: its first ``1 - test_fraction`` of steps
give the training windows (inputs and targets inside it), the rest the test windows (targets
after the split, contexts reaching back before it): no training target lies in the test period.
Each series is scaled with statistics of its own training part only (series of one source
differ in scale by orders of magnitude, e.g. M1's): by default standardised with its mean and
standard deviation there; ``scale: naive`` divides by the root mean square of its one-step
changes there instead (the in-sample error of the "no change" forecast: the scale of the M5
competition's RMSSE, Makridakis et al. 2022). With ``relative`` (the default) each window's
inputs and targets are then given relative to its last context value: the model sees no
absolute level, which trending series (airline, M1) leave far behind their training range in the
test period; a forecast's error is the same in either form (inputs and targets are shifted
alike), and predicting 0 is the naive "no change" forecast. Series too short for one training
and one test window are left out (``m1_yearly``'s shortest); a source left with none is refused
with the lengths it needs.

aeon 1.6 marks ``lynx``, ``pbs`` and ``shampoo`` deprecated (to be removed in aeon 1.7); a
source whose file an installed aeon lacks is refused in one line naming those present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import StreamOptions, param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

TARGET = "regression"  # clstm.targets: the next `horizon` values of the series

#: source -> (file inside aeon's datasets/data folder, what it is)
SOURCES: dict[str, tuple[str, str]] = {
    "airline": ("Airline/Airline.csv", "monthly airline passengers, 144 steps"),
    "pbs": ("PBS_dataset/PBS_dataset.csv", "monthly PBS scripts, 204 steps"),
    "lynx": ("Lynx/Lynx.csv", "yearly lynx trappings, 114 steps"),
    "shampoo": ("ShampooSales/ShampooSales.csv", "monthly shampoo sales, 36 steps"),
    "solar": ("solar/solar.csv", "half-hourly GB solar generation, 289 steps"),
    "uschange": ("Uschange/Uschange.csv", "quarterly US changes, 5 series of 187 steps"),
    "m1_yearly": ("m1_yearly_dataset/m1_yearly_dataset.tsf", "M1 yearly, 181 series of 15-58"),
}
DEFAULT = ("airline", "solar", "lynx", "uschange", "pbs")


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``forecast_aeon`` benchmark."""

    name: Literal["forecast_aeon"] = param("forecast_aeon", "benchmark")
    sources: tuple[str, ...] = param(
        DEFAULT, "aeon's shipped series, one source per experience in order: " + ", ".join(SOURCES)
    )
    context: int = param(12, "input steps of a window", ge=1)
    horizon: int = param(2, "steps forecast after the context", ge=1)
    test_fraction: float = param(0.25, "last part of each series (in time) used for testing",
                                 gt=0.0, lt=1.0)  # fmt: skip
    stride: int = param(1, "steps between consecutive windows", ge=1)
    standardize: bool = param(
        True, "scale each series with statistics of its training part only (see scale)"
    )
    scale: Literal["std", "naive"] = param(
        "std",
        "std: standardise with the training part's mean and standard deviation; naive: centre, "
        "divide by the RMS of the training part's one-step changes (M5's RMSSE scale)",
    )
    relative: bool = param(
        True, "give each window relative to its last context value (level-free; same errors)"
    )

    def __post_init__(self) -> None:
        self._settle_scenario(("domain", "task"))
        if self.validation:
            raise ValueError("benchmark.validation: forecast_aeon has no validation split")
        if not self.sources:
            raise ValueError("benchmark.sources: name at least one of " + ", ".join(SOURCES))
        for source in self.sources:
            if source not in SOURCES:
                raise ValueError(
                    f"benchmark.sources: unknown source '{source}'; choose from "
                    + ", ".join(SOURCES)
                )
        if len(set(self.sources)) != len(self.sources):
            raise ValueError("benchmark.sources: a source is listed twice")

    @property
    def n_experiences(self) -> int:
        return len(self.sources)


def aeon_data_folder() -> Path:
    """aeon's folder of shipped datasets (a clear error when aeon is not installed)."""
    from clstm.errors import ConfigError

    try:
        import aeon.datasets
    except ImportError:
        raise ConfigError(
            "the forecast_aeon benchmark needs the aeon package: pip install 'clstm[ucr]'"
        ) from None
    return Path(aeon.datasets.__file__).parent / "data"


def load_source(source: str) -> list[np.ndarray]:
    """The series of ``source`` (float64 arrays, oldest value first), read from aeon's files."""
    from clstm.errors import DataError

    folder = aeon_data_folder()
    path = folder / SOURCES[source][0]
    if not path.is_file():
        present = [s for s, (f, _) in SOURCES.items() if (folder / f).is_file()]
        raise DataError(
            f"benchmark.sources: the installed aeon has no '{source}' series ({path} is missing; "
            f"aeon 1.7 removes lynx, pbs and shampoo); sources present: {', '.join(present)}"
        )
    if path.suffix == ".tsf":
        from aeon.datasets import load_from_tsf_file

        frame, _ = load_from_tsf_file(str(path))
        return [np.asarray(v, dtype=np.float64) for v in frame["series_value"]]
    table = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64)
    if source == "uschange":  # index, quarter (text), then the 5 series
        return [table[:, c] for c in range(2, table.shape[1])]
    return [table[:, -1]]


def windows(values: np.ndarray, starts: range, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(N, context, 1)`` and targets ``(N, horizon)`` of the windows starting at
    ``starts`` in one series."""
    c, h = config.context, config.horizon
    x = np.stack([values[s : s + c] for s in starts])
    y = np.stack([values[s + c : s + c + h] for s in starts])
    if config.relative:  # a shift of inputs and targets alike: errors are unchanged
        last = x[:, -1:]
        x, y = x - last, y - last
    return x[..., None].astype(np.float32), y.astype(np.float32)


def split(config: Config, source: str, *, with_times: bool = False):
    """The training and test windows of every long enough series of ``source`` (and, with
    ``with_times``, the training windows' ``(arrival, observed)`` times, each series from its own
    time 0: :func:`clstm.data.forecast.window_times`)."""
    from clstm.data.forecast import window_times
    from clstm.errors import DataError

    c, h = config.context, config.horizon
    train, test, times = [], [], []
    for values in load_source(source):
        cut = int(len(values) * (1 - config.test_fraction))
        if cut < c + h or len(values) - cut < h:  # no training window, or no test target
            continue
        if config.standardize:
            part = values[:cut]
            spread = np.sqrt(np.mean(np.diff(part) ** 2)) if config.scale == "naive" else part.std()
            values = (values - part.mean()) / (spread or 1.0)
        train.append(windows(values, range(0, cut - c - h + 1, config.stride), config))
        times.append(window_times(range(0, cut - c - h + 1, config.stride), c, h))
        test.append(windows(values, range(cut - c, len(values) - c - h + 1, config.stride), config))
    if not train:
        need = int(np.ceil((c + h) / (1 - config.test_fraction)))
        raise DataError(
            f"benchmark.sources: every '{source}' series is too short for context {c} + horizon "
            f"{h} with test_fraction {config.test_fraction} (needs >= {need} steps); use a "
            "shorter context or horizon"
        )
    parts = tuple(
        (np.concatenate([x for x, _ in part]), np.concatenate([y for _, y in part]))
        for part in (train, test)
    )
    if not with_times:
        return parts
    return (*parts, tuple(np.concatenate([t[k] for t in times]) for k in (0, 1)))


def build(config: Config) -> SequenceBenchmark:
    """One experience per source."""
    from clstm.data.stepwise import target_benchmark

    train, test, times = [], [], []
    for source in config.sources:
        (x_tr, y_tr), (x_te, y_te), arrival_times = split(config, source, with_times=True)
        train.append((x_tr, np.full(len(x_tr), config.context), y_tr))
        test.append((x_te, np.full(len(x_te), config.context), y_te))
        times.append(arrival_times)  # each series from its own time 0, side by side
    bench = target_benchmark(
        train,
        test,
        target=TARGET,
        n_outputs=config.horizon,
        names=list(config.sources),
        scenario=config.scenario,
        tag=repr(config),
    )
    bench.arrival_times = times
    return bench
