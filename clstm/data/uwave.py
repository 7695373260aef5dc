"""The ``uwave`` benchmark: UWave gestures class-incremental, as in TSCIL.

Eight gestures recorded with a Wii remote's 3-axis accelerometer, 315 steps x 3 channels. As in
TSCIL (``data/uwave.py``): the UCR archive's univariate sets UWaveGestureLibraryX, Y and Z (896
training, 3,582 test series each, same recordings in the same order) stacked as three channels,
labels 1-8 as 0-7, 10% of the training set held out (``train_test_split(test_size=0.1,
random_state=0)``), four tasks of two classes (:mod:`clstm.data.tscil`), TSCIL's preset order
0,2,1,3,4,6,5,7 for ``class_order: preset``. The three sets are UCR/UEA files read like
``ucr_stream``'s (aeon's loader and layout, ``<data root>/ucr/``), downloaded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import param
from clstm.data.cache import boundary
from clstm.data.tscil import TscilOptions
from clstm.errors import DataError

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

AXES = ("UWaveGestureLibraryX", "UWaveGestureLibraryY", "UWaveGestureLibraryZ")
PRESET = [0, 2, 1, 3, 4, 6, 5, 7]


@dataclass(frozen=True)
class Config(TscilOptions):
    """Options of the ``uwave`` benchmark."""

    name: Literal["uwave"] = param("uwave", "benchmark")


@boundary("UWave")
def fetch(root: str | None, download: bool = True) -> list:
    from clstm.data import ucr

    return [ucr.fetch(axis, root, download) for axis in AXES]


@boundary("UWave")
def load(root: str | None, download: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (X (N, 315, 3), y (N,) in 0..7), "test": ...}`` from the three UCR sets."""
    from clstm.data import ucr

    out = {}
    for split in ("TRAIN", "TEST"):
        parts = [ucr.load(axis, split, root, download) for axis in AXES]
        try:
            labels = [np.asarray(p[1]).astype(float).astype(np.int64) for p in parts]
            channels = [np.stack([s[:, 0] for s in p[0]]) for p in parts]  # (N, 315) each
        except (ValueError, IndexError) as exc:
            raise DataError(
                f"UWave: the {split} files of {', '.join(AXES)} are not equal-length univariate "
                f"series with numeric labels ({exc}); fetch them again"
            ) from None
        differ = any(len(a) != len(labels[0]) or not np.array_equal(a, labels[0]) for a in labels)
        if differ or len({c.shape for c in channels}) != 1:
            raise DataError(
                f"UWave: the {split} files of {', '.join(AXES)} do not hold the same recordings "
                "(labels or lengths differ); fetch them again"
            )
        out[split.lower()] = (np.stack(channels, axis=-1), labels[0] - 1)
    return out


def build(config: Config, *, run_seed: int = 0) -> SequenceBenchmark:
    """UWave as TSCIL's class-incremental benchmark."""
    from clstm.data.tscil import build_stream, holdout

    data = load(config.root, config.download)
    train, _ = holdout(*data["train"], 0.1, stratify=False)
    return build_stream(
        config, train, data["test"], n_classes=8, per_task=2, preset=PRESET,
        run_seed=run_seed, label="gestures",
    )  # fmt: skip
