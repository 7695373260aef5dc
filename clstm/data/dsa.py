"""The ``dsa`` benchmark: Daily and Sports Activities (Barshan & Altun) class-incremental, TSCIL.

Activities recorded by five 9-axis IMUs (45 channels) at 25 Hz, segments of 125 steps (5 s), 8
subjects x 60 segments per activity. As in TSCIL (``data/daily_sports.py``): activity 16 is
dropped (similar to another) so 18 remain, labelled 0-17 in order; all subjects, split 75/25
stratified by class (``train_test_split(test_size=0.25, random_state=0, stratify=y)``); nine
tasks of two classes (:mod:`clstm.data.tscil`), the first three of the order kept for tuning
(``stream: val``), the other six for experiments (``stream: exp``, default). (TSCIL's paper
lists DSA with 2 classes per task in its code; issue 13's "6 x 3" does not match that code.)

Files: the UCI archive (``daily+and+sports+activities.zip``) or its extracted ``data/aNN/pN/
sNN.txt`` tree under ``<data root>/dsa/``; downloaded once unless ``benchmark.download`` is false.
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

URL = "https://archive.ics.uci.edu/static/public/256/daily+and+sports+activities.zip"
ZIP = "daily+and+sports+activities.zip"
ARCHIVES = (ZIP,)
ACTIVITIES = [a for a in range(1, 20) if a != 16]  # TSCIL drops activity 16


@dataclass(frozen=True)
class Config(TscilOptions):
    """Options of the ``dsa`` benchmark."""

    name: Literal["dsa"] = param("dsa", "benchmark")


def folder(root: str | None) -> Path:
    return data_root(root) / "dsa"


def _segment(base: Path, activity: int, subject: int, segment: int) -> Path:
    return base / f"a{activity:02d}" / f"p{subject}" / f"s{segment:02d}.txt"


def missing_files(root: str | None) -> list[str]:
    """What the extracted tree lacks (relative to the data folder): activity folders, and the
    first segment of the last activity (which a complete extraction holds)."""
    base = folder(root) / "data"
    missing = [f"data/a{a:02d}" for a in ACTIVITIES if not (base / f"a{a:02d}").is_dir()]
    last = _segment(base, ACTIVITIES[-1], 1, 1)
    if not last.is_file() and f"data/a{ACTIVITIES[-1]:02d}" not in missing:
        missing.append(str(last.relative_to(folder(root))))
    return missing


@boundary("DSA")
def fetch(root: str | None, download: bool = True) -> Path:
    """The extracted ``data`` folder of the archive (extracted or downloaded when needed)."""
    here = folder(root)
    base = here / "data"
    last = _segment(base, ACTIVITIES[-1], 1, 1)
    if last.is_file():
        return base
    cache.unpack_archive(
        here, url=URL, outer=ZIP, inner=None, dataset="DSA", fetch="dsa", download=download,
        expected="data/a01/p1/s01.txt ... (or the UCI zip)",
    )  # fmt: skip
    if not last.is_file():
        raise corrupt_error(here / ZIP, f"it lacks {last.relative_to(here)}")
    return base


def _read(path: Path) -> np.ndarray:
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise corrupt_error(path.parent, f"{path.name} is missing") from None
        if isinstance(exc, OSError) and not isinstance(exc, UnicodeDecodeError):
            raise
        raise corrupt_error(path, f"not a comma-separated table: {exc}") from None
    if table.shape != (125, 45) or not np.isfinite(table).all():
        if table.shape == (125, 45):
            raise corrupt_error(path, "a value is not finite")
        raise corrupt_error(path, f"{table.shape[0]} x {table.shape[1]} values, not 125 x 45")
    return table


@boundary("DSA")
def load(root: str | None, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All segments (``(8640, 125, 45)`` for the archive: 18 activities x 8 subjects x 60
    segments, as found under activity 1) and labels 0-17 (TSCIL's numbering)."""
    base = fetch(root, download)
    first = base / "a01"
    subjects = sorted(int(p.name[1:]) for p in first.glob("p*") if p.name[1:].isdigit())
    segments = sorted(
        int(p.stem[1:]) for p in (first / "p1").glob("s*.txt") if p.stem[1:].isdigit()
    )
    X, y = [], []
    for label, activity in enumerate(ACTIVITIES):
        for subject in subjects:
            for segment in segments:
                X.append(_read(_segment(base, activity, subject, segment)))
                y.append(label)
    return np.stack(X), np.array(y, dtype=np.int64)


def build(config: Config, *, run_seed: int = 0) -> SequenceBenchmark:
    """DSA as TSCIL's class-incremental benchmark."""
    from clstm.data.tscil import build_pooled

    return build_pooled(config, *load(config.root, config.download), run_seed=run_seed)
