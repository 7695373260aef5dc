"""The ``ucr_stream`` benchmark: real UCR/UEA classification datasets shipped inside ``aeon``.

Each dataset named in ``benchmark.datasets`` is one experience, in that order, with its official
train/test split. The files come from the ``aeon`` wheel itself (``aeon/datasets/data``): nothing
is downloaded. Datasets differ in channels, lengths and classes, so the default scenario is
task-incremental (one head per dataset); labels are mapped to integers per dataset.

Shipped (aeon 1.x): JapaneseVowels (12 channels, lengths 7-29, 9 classes), BasicMotions (6 ch.,
100 steps, 4 cl.), GunPoint (1 ch., 150, 2), ArrowHead (1, 251, 3), ItalyPowerDemand (1, 24, 2),
OSULeaf (1, 427, 6), PickupGestureWiimoteZ (1 ch., lengths 29-361, 10 cl.).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clstm.data.sequences import SequenceBenchmark
from clstm.schema import StreamOptions, param

SHIPPED = (
    "JapaneseVowels",
    "BasicMotions",
    "GunPoint",
    "ArrowHead",
    "ItalyPowerDemand",
    "OSULeaf",
    "PickupGestureWiimoteZ",
)


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``ucr_stream`` benchmark."""

    name: Literal["ucr_stream"] = param("ucr_stream", "benchmark")
    datasets: tuple[str, ...] = param(
        ("JapaneseVowels", "BasicMotions", "GunPoint", "ItalyPowerDemand"),
        f"datasets in experience order; shipped with aeon: {', '.join(SHIPPED)}",
    )

    def __post_init__(self) -> None:
        self._settle_scenario(("task", "domain"))
        unknown = [d for d in self.datasets if d not in SHIPPED]
        if unknown:
            raise ValueError(
                f"benchmark.datasets: {unknown[0]!r} is not shipped with aeon; "
                f"choose from {', '.join(SHIPPED)}"
            )
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError("benchmark.datasets: a dataset is listed twice")


def data_dir() -> Path:
    """The folder of UCR/UEA files inside the installed ``aeon`` package."""
    try:
        import aeon.datasets
    except ImportError:
        from clstm.errors import DataError

        raise DataError(
            "the ucr_stream benchmark needs the aeon package: pip install 'clstm[ucr]'"
        ) from None
    return Path(aeon.datasets.__file__).parent / "data"


def load(name: str, split: str):
    """One dataset split as a list of ``(T_i, channels)`` arrays and string labels."""
    from aeon.datasets import load_from_ts_file

    X, y = load_from_ts_file(str(data_dir() / name / f"{name}_{split}.ts"))
    return [series.T for series in X], y  # aeon gives (channels, T_i) per series


def build(config: Config) -> SequenceBenchmark:
    """The configured UCR/UEA stream as an Avalanche benchmark (one experience per dataset)."""
    from clstm.data.arrays import benchmark_from_arrays

    data_dir()  # a clear message if aeon is missing
    return benchmark_from_arrays(
        [load(name, "TRAIN") for name in config.datasets],
        [load(name, "TEST") for name in config.datasets],
        scenario=config.scenario,
        names=list(config.datasets),
        standardize=config.standardize,
        validation=config.validation,
    )
