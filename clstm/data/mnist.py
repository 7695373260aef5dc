"""MNIST read as sequences: the files (torchvision's layout and reader) and the row/pixel views.

Shared by the ``smnist`` (Split) and ``pmnist`` (Permuted) benchmarks. The four IDX files are read
from ``<root>/MNIST/raw/`` exactly as torchvision's ``MNIST`` dataset keeps them (plain, or the
``.gz`` files as distributed, decompressed there once), so an existing torchvision cache is reused
by pointing ``benchmark.root`` at it. Missing files are downloaded from torchvision's mirrors and
checked against torchvision's MD5s (``MNIST.mirrors``, ``MNIST.resources``), with clstm's
downloader (:func:`clstm.data.cache.download_file`: timeouts, retries, progress), unless
``benchmark.download`` is false.

Reading (``benchmark.read``):

- ``row``: 28 steps x 28 features, one image row per step (row-MNIST);
- ``pixel``: ``784 / k`` steps x ``k`` features, ``k = benchmark.pixels_per_step`` pixels per
  step in row-major order (``k = 1``: pixel-MNIST, 784 steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from clstm.config.schema import MAX_SEED, param
from clstm.data.cache import (
    DownloadOptions,
    boundary,
    corrupt_error,
    data_root,
    download_file,
    folder_for,
    gunzip,
    missing_error,
)
from clstm.errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PIXELS = 28 * 28


@dataclass(frozen=True)
class MnistOptions(DownloadOptions):
    """How MNIST images become sequences (shared by smnist and pmnist)."""

    read: Literal["row", "pixel"] = param(
        "row", "row: 28 steps x 28 pixels; pixel: 784/pixels_per_step steps x pixels_per_step"
    )
    pixels_per_step: int = param(
        1, "read: pixel only; pixels per step (1: 784 steps; Cossu et al. 2021 used 4)", ge=1
    )
    pixel_range: Literal["unit", "raw"] = param(
        "unit", "unit: grey levels / 255 in [0, 1]; raw: 0-255 as in Cossu et al.'s code"
    )
    standardize: bool = param(False, "standardise per feature (pixels are already scaled)")
    seed: int = param(0, "seed of the permutations", ge=0, le=MAX_SEED)

    def _check_reading(self) -> None:
        if self.read == "row" and self.pixels_per_step != 1:
            raise ValueError(
                "benchmark.pixels_per_step applies to read: pixel (read: row always has 28 "
                "pixels per step); remove it or set read: pixel"
            )
        if PIXELS % self.pixels_per_step:
            raise ValueError(
                f"benchmark.pixels_per_step: {self.pixels_per_step} does not divide the 784 "
                "pixels; use a divisor such as 1, 2, 4, 7, 14, 16, 28"
            )

    @property
    def step_width(self) -> int:
        """Features per step."""
        return 28 if self.read == "row" else self.pixels_per_step


def raw_folder(root: str | None) -> Path:
    """``<root>/MNIST/raw``: torchvision's layout."""
    return data_root(root) / "MNIST" / "raw"


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """One IDX file through torchvision's reader; a broken file is a one-line error."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    reader = read_image_file if kind == "images" else read_label_file
    try:
        return reader(str(path)).numpy()
    except (AssertionError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise corrupt_error(path, f"not an MNIST {kind} IDX file: {exc or 'bad header'}") from None


def missing_files(root: str | None) -> list[str]:
    """IDX files absent from the raw folder (neither plain nor ``.gz``)."""
    raw = raw_folder(root)
    names = [n for pair in FILES.values() for n in pair]
    return [n for n in names if not (raw / n).exists() and not (raw / f"{n}.gz").exists()]


@boundary("MNIST")
def fetch(root: str | None, download: bool = True, name: str = "smnist") -> Path:
    """Make the four IDX files present (decompress ``.gz``, download what is missing); ``name``
    is the benchmark asking (``smnist`` or ``pmnist``), which the messages tell to fetch."""
    raw = raw_folder(root)
    missing = missing_files(root)
    if missing and not download:
        raise missing_error("MNIST", raw, [f"{n}[.gz]" for n in missing], name)
    if missing:
        _download(raw, missing, name)
    for pair in FILES.values():
        for file in pair:
            if not (raw / file).exists():
                gunzip(raw / f"{file}.gz", raw / file, "MNIST")
    return raw


def _download(raw: Path, missing: list[str], name: str) -> None:
    """The missing ``.gz`` files from torchvision's mirrors (the first that answers), each
    checked against torchvision's MD5."""
    from torchvision.datasets import MNIST

    from clstm.errors import DataError

    folder_for(raw, "MNIST")
    md5s = dict(MNIST.resources)
    for file in missing:
        gz = f"{file}.gz"
        failure = None
        for mirror in MNIST.mirrors:
            try:
                download_file(f"{mirror}{gz}", raw / gz, "MNIST", name, md5=md5s.get(gz))
                break
            except DataError as exc:  # the next mirror; the last one's error if all fail
                failure = exc
        else:
            raise failure


@boundary("MNIST")
def load(
    root: str | None, download: bool = True, name: str = "smnist"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images uint8 (N, 28, 28), labels (N,)), "test": ...}`` from the raw folder
    (``name``: the benchmark asking, see :func:`fetch`)."""
    raw = fetch(root, download, name)
    out = {}
    for split, (images_name, labels_name) in FILES.items():
        images = _read_idx(raw / images_name, "images")
        labels = _read_idx(raw / labels_name, "labels")
        if images.shape[1:] != (28, 28):
            raise corrupt_error(raw / images_name, f"images are {images.shape[1:]}, not 28x28")
        if len(images) != len(labels):
            raise DataError(
                f"MNIST: {raw / images_name} has {len(images)} images but {raw / labels_name} "
                f"has {len(labels)} labels; delete both and fetch them again"
            )
        if len(labels) and (labels.min() < 0 or labels.max() > 9):
            raise corrupt_error(raw / labels_name, f"labels outside 0-9 ({labels.max()})")
        out[split] = (images, labels.astype(np.int64))
    return out


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    """Write a uint8 array in the IDX format of MNIST's files (``gz``: gzip-compressed, as
    distributed). The counterpart of torchvision's reader, for fixtures and benchmarks."""
    import gzip
    import struct

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim)  # 0x08: unsigned bytes
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    path = Path(path)
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data, compresslevel=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_files(root: Path, split_images: dict, split_labels: dict, *, gz: bool = False) -> Path:
    """Write ``{"train": images, "test": images}`` and labels as the four MNIST files under
    ``<root>/MNIST/raw`` (torchvision's layout); returns the raw folder."""
    raw = Path(root) / "MNIST" / "raw"
    for split, (images_name, labels_name) in FILES.items():
        write_idx(raw / images_name, split_images[split], gz=gz)
        write_idx(raw / labels_name, split_labels[split], gz=gz)
    return raw


def as_sequences(images: np.ndarray, options: MnistOptions) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, steps, features)`` in the configured reading."""
    x = images.reshape(len(images), -1, options.step_width).astype(np.float32)
    if options.pixel_range == "unit":
        x /= 255.0
    return x
