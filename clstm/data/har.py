"""The ``har`` benchmark: UCI-HAR (Anguita et al. 2013) class-incremental, as in TSCIL.

Six activities recorded with a waist-worn smartphone, windows of 128 steps (2.56 s at 50 Hz) x 9
inertial channels (total acceleration, body acceleration and gyroscope, x/y/z), the official
subject-wise train/test split (7,352 / 2,947 windows). As in TSCIL (Qiao et al., KDD 2024,
``data/har_inertial.py``, ``utils/setup_elements.py``): labels 1-6 become 0-5, three experiences of
two classes, class-incremental (one growing head); ``class_order: preset`` takes TSCIL's preset
order (0..5), ``shuffled`` draws a new order for every run from the run's seed (TSCIL's default,
``fix_order`` off).

Differences from TSCIL's code, all deliberate: the test set is the official one (TSCIL too) and
the training set the whole official training set unless ``benchmark.validation`` holds some out
(TSCIL holds out 10% with scikit-learn's ``train_test_split(random_state=0)`` and another 10% per
task for early stopping: use ``validation: 0.1``); inputs are standardised per channel with
training statistics (TSCIL feeds raw signals and normalises inside its networks).

Files: the archive as distributed by the UCI repository (``UCI HAR Dataset.zip``, or the UCI
download ``human+activity+recognition+using+smartphones.zip`` that contains it) or its extracted
folder ``UCI HAR Dataset/``, under ``<data root>/uci_har/``; downloaded there once unless
``benchmark.download`` is false.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.data.cache import (
    DownloadOptions,
    corrupt_error,
    data_root,
    download_error,
    missing_error,
)
from clstm.errors import DataError
from clstm.schema import param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

URL = (
    "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip"
)
OUTER_ZIP = "human+activity+recognition+using+smartphones.zip"
INNER_ZIP = "UCI HAR Dataset.zip"
FOLDER = "UCI HAR Dataset"
SIGNALS = [
    f"{kind}_{axis}" for kind in ("total_acc", "body_acc", "body_gyro") for axis in "xyz"
]  # TSCIL's channel order
ACTIVITIES = ["walking", "upstairs", "downstairs", "sitting", "standing", "laying"]


@dataclass(frozen=True)
class Config(DownloadOptions):
    """Options of the ``har`` benchmark."""

    name: Literal["har"] = param("har", "benchmark")
    n_experiences: int = param(3, "groups of activities (TSCIL: 3 x 2)", ge=1, le=6)
    class_order: Literal["preset", "shuffled"] = param(
        "preset", "preset: activities 0..5 in order; shuffled: a new order per run (run seed)"
    )

    def __post_init__(self) -> None:
        self._settle_scenario(("class", "task"))


def folder(root: str | None) -> Path:
    return data_root(root) / "uci_har"


def _files(base: Path, split: str) -> list[Path]:
    inertial = base / split / "Inertial Signals"
    return [inertial / f"{s}_{split}.txt" for s in SIGNALS] + [base / split / f"y_{split}.txt"]


def _extract(archive: Path, target: Path) -> None:
    """Extract a zip into ``target`` (a broken archive is a one-line error naming it)."""
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno:
            raise
        raise corrupt_error(archive, f"not a complete zip archive: {exc}") from None


def fetch(root: str | None, download: bool = True) -> Path:
    """The extracted ``UCI HAR Dataset`` folder: extracted from the zip, downloaded if needed."""
    here = folder(root)
    base = here / FOLDER
    if all(p.is_file() for split in ("train", "test") for p in _files(base, split)):
        return base
    if not (here / INNER_ZIP).is_file() and not (here / OUTER_ZIP).is_file():
        if not download:
            raise missing_error("UCI-HAR", here, [f"{FOLDER}/ (or {INNER_ZIP})"], "har")
        import urllib.request

        here.mkdir(parents=True, exist_ok=True)
        partial = here / f".{OUTER_ZIP}.part"
        try:
            urllib.request.urlretrieve(URL, partial)  # noqa: S310 - the official UCI URL
            partial.replace(here / OUTER_ZIP)
        except Exception as exc:  # noqa: BLE001 - any failure of the download is reported
            partial.unlink(missing_ok=True)
            raise download_error("UCI-HAR", here, exc, "har") from None
    if not (here / INNER_ZIP).is_file():
        _extract(here / OUTER_ZIP, here)  # the UCI download wraps the dataset's own zip
    if not base.is_dir() or not all(p.is_file() for p in _files(base, "train")):
        _extract(here / INNER_ZIP, here)
    missing = [p for split in ("train", "test") for p in _files(base, split) if not p.is_file()]
    if missing:
        raise corrupt_error(here / INNER_ZIP, f"it lacks {missing[0].relative_to(here)}")
    return base


def _read_matrix(path: Path) -> np.ndarray:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        values = np.array(" ".join(lines).split(), dtype=np.float64)
        return values.reshape(len(lines), -1)
    except ValueError as exc:
        raise corrupt_error(path, f"not a whitespace-separated number table: {exc}") from None


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
    """UCI-HAR as a class-incremental Avalanche benchmark."""
    from clstm.data.streams import split_stream

    data = load(config.root, config.download)
    order = list(range(6))
    if config.class_order == "shuffled":
        order = np.random.default_rng(run_seed).permutation(6).tolist()
    return split_stream(
        data["train"], data["test"], n_experiences=config.n_experiences,
        scenario=config.scenario, class_order=order if config.class_order == "shuffled" else None,
        label="activities", standardize=config.standardize, validation=config.validation,
    )  # fmt: skip
