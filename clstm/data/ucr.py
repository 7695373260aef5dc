"""The ``ucr_stream`` benchmark: UCR/UEA classification datasets, one per experience, by name.

Each dataset named in ``benchmark.datasets`` is one experience, in that order, with its official
train/test split. Any of the archive's classification sets can be named (128 univariate UCR and
30 multivariate UEA sets, and the others aeon's ``tsc_datasets`` lists):

- the few that ship inside the ``aeon`` wheel (``aeon/datasets/data``: JapaneseVowels,
  BasicMotions, GunPoint, ArrowHead, ItalyPowerDemand, OSULeaf, PickupGestureWiimoteZ, ACSF1) are
  read from there, offline;
- the others are downloaded once with aeon's ``load_classification`` into
  ``<data root>/ucr/<name>/<name>_TRAIN.ts`` (aeon's layout; data root: ``benchmark.root``, else
  ``$CLSTM_DATA``, else ``~/.cache/clstm``), or read from there when present; with
  ``benchmark.download: false`` a missing set is a one-line error saying how to fetch it.

Files are read with aeon's ``load_from_ts_file``: unequal lengths are kept as they are (clstm
handles variable lengths; e.g. JapaneseVowels, CharacterTrajectories), and for sets with missing
values the archive's imputed ``<name>_nmv`` files are used where present (aeon's default).
Datasets differ in channels, lengths and classes, so the default scenario is task-incremental
(one head per dataset; labels mapped to integers per dataset). ``scenario: class`` makes the stream
class-incremental across datasets: each dataset brings its own classes to one growing head, with no
task labels (as in TSCIL-style class-incremental streams); ``domain`` shares one head and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clstm.config.schema import did_you_mean, param
from clstm.data.cache import (
    DownloadOptions,
    boundary,
    corrupt_error,
    data_root,
    download_error,
    folder_for,
    missing_error,
)
from clstm.errors import DataError

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark

#: shipped inside aeon 1.x (checked at build time against the installed wheel)
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
class Config(DownloadOptions):
    """Options of the ``ucr_stream`` benchmark."""

    name: Literal["ucr_stream"] = param("ucr_stream", "benchmark")
    datasets: tuple[str, ...] = param(
        ("JapaneseVowels", "BasicMotions", "GunPoint", "ItalyPowerDemand"),
        "UCR/UEA dataset names in experience order; offline (shipped with aeon): "
        f"{', '.join(SHIPPED)}; others are downloaded once",
    )

    def __post_init__(self) -> None:
        self._settle_scenario(("task", "domain", "class"))
        if not self.datasets:
            raise ValueError("benchmark.datasets: name at least one dataset")
        if len({d.lower() for d in self.datasets}) != len(self.datasets):
            raise ValueError("benchmark.datasets: a dataset is listed twice")


def _aeon():
    try:
        import aeon.datasets
        from aeon.datasets.tsc_datasets import tsc_zenodo
    except ImportError:
        raise DataError(
            "the ucr_stream benchmark needs the aeon package: pip install 'clstm[ucr]'"
        ) from None
    return aeon.datasets, tsc_zenodo


def data_dir() -> Path:
    """The folder of UCR/UEA files inside the installed ``aeon`` package."""
    datasets, _ = _aeon()
    return Path(datasets.__file__).parent / "data"


def cache_dir(root: str | None) -> Path:
    """Where downloaded sets live: ``<data root>/ucr`` (aeon's ``extract_path`` layout)."""
    return data_root(root) / "ucr"


def archive_name(name: str) -> str:
    """The archive's spelling of ``name`` (case-insensitive); one line with a suggestion if none."""
    _, known = _aeon()
    shipped = [p.name for p in data_dir().iterdir() if (p / f"{p.name}_TRAIN.ts").is_file()]
    names = {n.lower(): n for n in [*known, *shipped]}
    if name.lower() not in names:
        raise DataError(
            f"benchmark.datasets: '{name}' is not a UCR/UEA classification dataset"
            f"{did_you_mean(name, list(names.values()))} (aeon's tsc_datasets lists the names)"
        )
    return names[name.lower()]


def folder(name: str, root: str | None) -> Path | None:
    """The folder holding ``name``'s files: aeon's bundled copy, else the cache (None: absent)."""
    for base in (data_dir(), cache_dir(root)):
        if (base / name / f"{name}_TRAIN.ts").is_file() and (
            base / name / f"{name}_TEST.ts"
        ).is_file():
            return base / name
    return None


@boundary("UCR/UEA")
def fetch(name: str, root: str | None, download: bool = True) -> Path:
    """The folder of dataset ``name``, downloading it with aeon when allowed and missing."""
    name = archive_name(name)
    found = folder(name, root)
    if found is not None:
        return found
    target = cache_dir(root) / name
    if not download:
        files = [f"{name}_{split}.ts" for split in ("TRAIN", "TEST")]
        raise missing_error(
            f"UCR/UEA {name}", target, [f for f in files if not (target / f).is_file()],
            f"ucr {name}",
        )  # fmt: skip
    folder_for(cache_dir(root), f"UCR/UEA {name}")
    from aeon.datasets import load_classification

    try:  # aeon downloads from the archive's Zenodo records into <extract_path>/<name>/
        load_classification(name, split="train", extract_path=str(cache_dir(root)))
    except Exception as exc:  # noqa: BLE001 - any failure of the download is reported
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # aeon created it before failing
        raise download_error(f"UCR/UEA {name}", target, exc, f"ucr {name}") from None
    found = folder(name, root)
    if found is None:
        raise download_error(f"UCR/UEA {name}", target, RuntimeError("no .ts files"), f"ucr {name}")
    return found


@boundary("UCR/UEA")
def load(name: str, split: str, root: str | None = None, download: bool = True):
    """One dataset split as a list of ``(T_i, channels)`` arrays and string labels."""
    from aeon.datasets import load_from_ts_file

    where = fetch(name, root, download)
    name = where.name
    path = where / f"{name}_{split}.ts"
    imputed = where / f"{name}_nmv_{split}.ts"  # the archive's version without missing values
    path = imputed if imputed.is_file() else path
    try:
        X, y = load_from_ts_file(str(path))
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise corrupt_error(
            path,
            f"not a readable .ts file: {(str(exc).splitlines() or [type(exc).__name__])[0]}",
        ) from None
    if len(X) == 0:
        raise corrupt_error(path, "it holds no series after @data")
    return [series.T for series in X], y  # aeon gives (channels, T_i) per series


def build(config: Config) -> SequenceBenchmark:
    """The configured UCR/UEA stream as an Avalanche benchmark (one experience per dataset)."""
    from clstm.data.arrays import benchmark_from_arrays

    names = [archive_name(n) for n in config.datasets]
    args = (config.root, config.download)
    return benchmark_from_arrays(
        [load(name, "TRAIN", *args) for name in names],
        [load(name, "TEST", *args) for name in names],
        scenario=config.scenario,
        names=names,
        standardize=config.standardize,
        validation=config.validation,
    )
