"""The ``wisdm`` benchmark: WISDM 2019 smartphone accelerometer class-incremental, as in TSCIL.

Eighteen activities (codes A-S without N) of 51 subjects, the phone's 3-axis accelerometer at
20 Hz. As in TSCIL (``data/wisdm.py``, following Neural Networks 2022's protocol): per subject and
activity, non-overlapping windows of 200 steps (stride 200), the last partial window padded with
zeros (tsai's ``SlidingWindow(pad_remainder=True)``, zeros as values); labels A..S -> 0..17; all
windows split 75/25 stratified by class (``train_test_split(test_size=0.25, random_state=0,
stratify=y)``); nine tasks of two classes (:mod:`clstm.data.tscil`), the first three of the order
kept for tuning (``stream: val``), the other six for experiments (``stream: exp``, default).

Files: the UCI archive (``wisdm+smartphone+and+smartwatch+activity+and+biometrics+dataset.zip``,
which wraps ``wisdm-dataset.zip``) or its extracted ``wisdm-dataset/raw/phone/accel/
data_<subject>_accel_phone.txt`` files under ``<data root>/wisdm/``; downloaded once unless
``benchmark.download`` is false.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import param
from clstm.data import cache
from clstm.data.cache import boundary, corrupt_error, data_root
from clstm.data.tscil import TscilOptions

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

URL = (
    "https://archive.ics.uci.edu/static/public/507/"
    "wisdm+smartphone+and+smartwatch+activity+and+biometrics+dataset.zip"
)
OUTER_ZIP = "wisdm+smartphone+and+smartwatch+activity+and+biometrics+dataset.zip"
INNER_ZIP = "wisdm-dataset.zip"
ACCEL = Path("wisdm-dataset") / "raw" / "phone" / "accel"
CODES = "ABCDEFGHIJKLMOPQRS"  # TSCIL's label_mapping: N is not an activity code
WINDOW = 200
ARCHIVES = (OUTER_ZIP, INNER_ZIP)  # either, as distributed


@dataclass(frozen=True)
class Config(TscilOptions):
    """Options of the ``wisdm`` benchmark."""

    name: Literal["wisdm"] = param("wisdm", "benchmark")


def folder(root: str | None) -> Path:
    return data_root(root) / "wisdm"


def missing_files(root: str | None) -> list[str]:
    """What the extracted tree lacks (relative to the data folder): the phone files."""
    if any((folder(root) / ACCEL).glob("data_*_accel_phone.txt")):
        return []
    return [f"{ACCEL}/data_*_accel_phone.txt"]


@boundary("WISDM")
def fetch(root: str | None, download: bool = True) -> Path:
    """The folder of the phone accelerometer files (extracted or downloaded when needed)."""
    here = folder(root)
    accel = here / ACCEL
    if any(accel.glob("data_*_accel_phone.txt")):
        return accel
    cache.unpack_archive(
        here, url=URL, outer=OUTER_ZIP, inner=INNER_ZIP, dataset="WISDM", fetch="wisdm",
        download=download, expected=f"{ACCEL}/data_*_accel_phone.txt",
    )  # fmt: skip
    if not any(accel.glob("data_*_accel_phone.txt")):
        raise corrupt_error(here / INNER_ZIP, f"it has no {ACCEL}/data_*_accel_phone.txt")
    return accel


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One subject's file: rows ``subject,activity,timestamp,x,y,z;`` -> values, activity codes."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise corrupt_error(path, f"not text: {exc}") from None
    rows = [line.rstrip().rstrip(";").split(",") for line in text.splitlines()]
    rows = [r for r in rows if len(r) > 1]
    try:
        codes = np.array([r[1] for r in rows])
        values = np.array([r[3:6] for r in rows], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise corrupt_error(path, f"not rows of subject,activity,time,x,y,z: {exc}") from None
    if (
        values.ndim != 2
        or values.shape[1] != 3
        or not set(codes) <= set(CODES)
        or not (np.isfinite(values).all())
    ):
        raise corrupt_error(path, "not rows of subject,activity,time,x,y,z with codes A-S")
    return values, codes


def windows(series: np.ndarray) -> np.ndarray:
    """Non-overlapping windows of 200 steps, the last partial one zero-padded (TSCIL)."""
    n = -(-len(series) // WINDOW)  # ceil
    out = np.zeros((n, WINDOW, series.shape[1]))
    out.reshape(-1, series.shape[1])[: len(series)] = series
    return out


@boundary("WISDM")
def load(root: str | None, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All windows ``(N, 200, 3)`` and labels 0-17, subject by subject, activity by activity."""
    accel = fetch(root, download)
    X, y = [], []
    for path in sorted(accel.glob("data_*_accel_phone.txt")):
        values, codes = _read(path)
        for label, code in enumerate(CODES):
            part = values[codes == code]
            if len(part):
                X.append(windows(part))
                y.append(np.full(len(X[-1]), label, dtype=np.int64))
    if not X:
        raise corrupt_error(accel, "its files hold no rows of any activity")
    return np.concatenate(X), np.concatenate(y)


def build(config: Config, *, run_seed: int = 0) -> SequenceBenchmark:
    """WISDM as TSCIL's class-incremental benchmark."""
    from clstm.data.tscil import build_pooled

    return build_pooled(config, *load(config.root, config.download), run_seed=run_seed)
