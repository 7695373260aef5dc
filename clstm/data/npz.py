"""The ``npz`` benchmark: your own datasets from ``.npz`` files, one file per experience.

Each file holds ``X_train``, ``y_train``, ``X_test``, ``y_test``. ``X_*`` is a numeric array
``(N, T, F)``; for variable-length sequences store them right-padded and add ``lengths_train`` /
``lengths_test`` (``(N,)`` integers), and each sequence is cut to its length. Object arrays are
refused (loading them would unpickle, i.e. run, code from the file). Paths are relative to the
working directory. Everything else is :func:`clstm.benchmark_from_arrays`.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from clstm.config.schema import MAX_SEED, StreamOptions, param

if TYPE_CHECKING:  # torch is imported only when a benchmark is built
    from clstm.data.sequences import SequenceBenchmark


@dataclass(frozen=True)
class Config(StreamOptions):
    """Options of the ``npz`` benchmark."""

    name: Literal["npz"] = param("npz", "benchmark")
    files: tuple[str, ...] = param(
        ("data.npz",),
        "one .npz file per experience with X_train, y_train, X_test, y_test "
        "(optional lengths_train, lengths_test); class scenario: one file",
    )
    class_experiences: int | None = param(
        None, "class scenario: experiences to split the classes into (null: 2 classes each)", ge=1
    )
    seed: int = param(0, "seed of the validation split", ge=0, le=MAX_SEED)

    def __post_init__(self) -> None:
        self._settle_scenario(("domain", "task", "class"))


def load(path: str | Path):
    """``(train, test)`` ``(X, y)`` pairs from one ``.npz`` file; X as a list of ``(T_i, F)``."""
    from clstm.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (looked in {path.resolve().parent})")
    try:
        with open(path, "rb") as handle:
            signature = handle.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    if signature not in (b"PK\x03\x04", b"PK\x05\x06"):  # every .npz is a zip archive
        raise DataError(
            f"{path}: not an .npz file (not a zip archive); save the arrays with numpy.savez"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {name: archive[name] for name in archive.files}  # .npz reads lazily
    except ValueError as exc:
        if "pickle" not in str(exc):
            raise DataError(f"{path}: damaged .npz file ({exc}); write it again") from None
        raise DataError(
            f"{path}: cannot read it without unpickling ({exc}); store numeric arrays"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        # NotImplementedError: a corrupted header naming no compression method zipfile knows
        raise DataError(
            f"{path}: damaged or truncated .npz file ({type(exc).__name__}: {exc}); write it again"
        ) from None
    missing = [k for k in ("X_train", "y_train", "X_test", "y_test") if k not in data]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; found {', '.join(data)}")
    pairs = []
    for split in ("train", "test"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        if f"lengths_{split}" in data:
            lengths = data[f"lengths_{split}"]
            if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
                raise DataError(
                    f"{path}: lengths_{split} must be a 1-D integer array (one length per "
                    f"sequence), got dtype {lengths.dtype} and shape {lengths.shape}"
                )
            if X.ndim != 3 or len(lengths) != len(X):
                raise DataError(
                    f"{path}: lengths_{split} needs X_{split} of shape (N, T, F) and one length "
                    "per sequence"
                )
            if np.any(lengths < 1) or np.any(lengths > X.shape[1]):
                raise DataError(f"{path}: lengths_{split} must lie in 1..{X.shape[1]}")
            X = [x[:n] for x, n in zip(X, lengths.astype(int), strict=True)]
        pairs.append((X, y))
    return pairs[0], pairs[1]


def build(config: Config) -> SequenceBenchmark:
    """One experience per file (class scenario: one file split by classes)."""
    from clstm.data.arrays import benchmark_from_arrays

    loaded = [load(f) for f in config.files]
    return benchmark_from_arrays(
        [train for train, _ in loaded],
        [test for _, test in loaded],
        scenario=config.scenario,
        names=[Path(f).stem for f in config.files] if config.scenario != "class" else None,
        n_experiences=config.class_experiences,
        standardize=config.standardize,
        validation=config.validation,
        seed=config.seed,
    )
