"""The ``har`` benchmark: UCI-HAR (Anguita et al. 2013) class-incremental, as in TSCIL.

Six activities recorded with a waist-worn smartphone, windows of 128 steps (2.56 s at 50 Hz) x 9
inertial channels (total acceleration, body acceleration and gyroscope, x/y/z, TSCIL's order),
labels 1-6 as 0-5. TSCIL's protocol (:mod:`clstm.data.tscil`): three tasks of two classes, all
used for experiments; the test set is the official (subject-wise) one; the training set is the
official one less the 10% TSCIL holds out (``train_test_split(test_size=0.1, random_state=0)``,
``data/har_inertial.py``): 6,616 training and 2,947 test windows.

Files: the archive as distributed by the UCI repository (``UCI HAR Dataset.zip``, or the UCI
download ``human+activity+recognition+using+smartphones.zip`` that contains it) or its extracted
folder ``UCI HAR Dataset/``, under ``<data root>/uci_har/``; downloaded there once unless
``benchmark.download`` is false.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import param
from clstm.data import cache
from clstm.data.cache import boundary, corrupt_error, data_root, missing_error
from clstm.data.tscil import TscilOptions
from clstm.errors import DataError

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

URL = (
    "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
OUTER_ZIP = "human+activity+recognition+using+smartphones.zip"
INNER_ZIP = "UCI HAR Dataset.zip"
FOLDER = "UCI HAR Dataset"
ARCHIVES = (OUTER_ZIP, INNER_ZIP)  # either, as distributed
SIGNALS = [
    f"{kind}_{axis}" for kind in ("total_acc", "body_acc", "body_gyro") for axis in "xyz"
]  # TSCIL's channel order
ACTIVITIES = ["walking", "upstairs", "downstairs", "sitting", "standing", "laying"]


@dataclass(frozen=True)
class Config(TscilOptions):
    """Options of the ``har`` benchmark."""

    name: Literal["har"] = param("har", "benchmark")


def folder(root: str | None) -> Path:
    return data_root(root) / "uci_har"


def _files(base: Path, split: str) -> list[Path]:
    inertial = base / split / "Inertial Signals"
    return [inertial / f"{s}_{split}.txt" for s in SIGNALS] + [base / split / f"y_{split}.txt"]


def missing_files(root: str | None) -> list[str]:
    """The files of the extracted folder that are absent (relative to the data folder)."""
    here = folder(root)
    files = [p for split in ("train", "test") for p in _files(here / FOLDER, split)]
    return [str(p.relative_to(here)) for p in files if not p.is_file()]


@boundary("UCI-HAR")
def fetch(root: str | None, download: bool = True) -> Path:
    """The extracted ``UCI HAR Dataset`` folder: extracted from the zip, downloaded if needed."""
    here = folder(root)
    base = here / FOLDER
    absent = missing_files(root)
    if not absent:
        return base
    no_archive = not any((here / z).is_file() for z in (OUTER_ZIP, INNER_ZIP))
    if base.is_dir() and no_archive and not download:
        # an extracted folder with files missing: name them, not the whole folder
        raise missing_error("UCI-HAR", here, absent, "har")
    cache.unpack_archive(
        here, url=URL, outer=OUTER_ZIP, inner=INNER_ZIP, dataset="UCI-HAR", fetch="har",
        download=download, expected=f"{FOLDER}/ (or {INNER_ZIP})",
    )  # fmt: skip
    missing = [p for split in ("train", "test") for p in _files(base, split) if not p.is_file()]
    if missing:
        raise corrupt_error(here / INNER_ZIP, f"it lacks {missing[0].relative_to(here)}")
    return base


def _read_matrix(path: Path) -> np.ndarray:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        values = np.array(" ".join(lines).split(), dtype=np.float64)
        if not lines or not np.isfinite(values).all():
            raise ValueError("no rows" if not lines else "a value is not finite")
        return values.reshape(len(lines), -1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise corrupt_error(path, f"not a whitespace-separated number table: {exc}") from None


@boundary("UCI-HAR")
def load(root: str | None, download: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (X (N, 128, 9), y (N,) in 0..5), "test": ...}``."""
    base = fetch(root, download)
    out = {}
    for split in ("train", "test"):
        *signal_files, label_file = _files(base, split)
        channels = [_read_matrix(p) for p in signal_files]
        labels = _read_matrix(label_file).reshape(-1).astype(np.int64) - 1
        shapes = {c.shape for c in channels}
        if len(shapes) != 1 or channels[0].shape[0] != len(labels):
            raise DataError(
                f"UCI-HAR: the {split} files in {base / split} disagree in size "
                f"({sorted(shapes)} windows x steps, {len(labels)} labels); fetch them again"
            )
        if labels.min() < 0 or labels.max() > 5:
            raise corrupt_error(label_file, "activity labels outside 1-6")
        out[split] = (np.stack(channels, axis=-1), labels)
    return out


def build(config: Config, *, run_seed: int = 0) -> SequenceBenchmark:
    """UCI-HAR as TSCIL's class-incremental benchmark."""
    from clstm.data.tscil import build_stream, holdout

    data = load(config.root, config.download)
    train, _ = holdout(*data["train"], 0.1, stratify=False)
    return build_stream(
        config, train, data["test"], n_classes=6, per_task=2, preset=list(range(6)),
        run_seed=run_seed, label="activities",
    )  # fmt: skip
