"""Where downloadable datasets live, and the errors when they are missing or broken.

Every benchmark whose files are downloaded (MNIST, UCR/UEA sets that aeon does not ship, UCI-HAR,
...) reads them from one data root:

1. ``benchmark.root`` when the config sets it;
2. else the environment variable ``CLSTM_DATA``;
3. else ``$XDG_CACHE_HOME/clstm`` (``~/.cache/clstm``).

Below the root each dataset keeps the layout of the library that reads it (torchvision's
``MNIST/raw/*-ubyte``, aeon's ``<name>/<name>_TRAIN.ts``, the official archives' folders), so an
existing torchvision or aeon cache can be pointed to with ``root``. With ``benchmark.download:
false`` (or no network) missing files are an error that names the folder, the files and how to
fetch them (``clstm data fetch NAME`` on a machine with network).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from clstm.config.schema import StreamOptions, param
from clstm.errors import DataError

ENV_VAR = "CLSTM_DATA"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$CLSTM_DATA``, else the per-user cache folder."""
    if root:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "clstm"


@dataclass(frozen=True)
class DownloadOptions(StreamOptions):
    """Options of benchmarks whose files are downloaded once into the data root."""

    root: str | None = param(
        None, f"data folder (default: ${ENV_VAR}, else ~/.cache/clstm); files keep their "
        "library's layout below it"
    )  # fmt: skip
    download: bool = param(
        True, "download missing files (false: a missing file is an error saying how to fetch it)"
    )


def missing_error(dataset: str, folder: Path, files: list[str], fetch: str) -> DataError:
    """One line: which files are missing where, and how to get them."""
    shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
    return DataError(
        f"{dataset}: missing {shown} in {folder}; run `clstm data fetch {fetch}` on a machine "
        f"with network (or copy the files there, or point benchmark.root / ${ENV_VAR} to a "
        "folder that has them)"
    )


def download_error(dataset: str, folder: Path, exc: BaseException, fetch: str) -> DataError:
    """One line: a download failed (no network, a moved URL, ...) and what to do instead."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(exc).__name__
    if reason.endswith(":") and len(lines) > 1:  # e.g. torchvision: "Error downloading X:" ...
        reason = f"{reason} {lines[-1]}"
    return DataError(
        f"{dataset}: could not download into {folder} ({reason}); run `clstm data fetch {fetch}` "
        f"on a machine with network, or copy the files there (benchmark.root / ${ENV_VAR})"
    )


def corrupt_error(path: Path, why: str) -> DataError:
    """One line: a file exists but cannot be read as what it should be."""
    return DataError(f"{path} is not a valid data file ({why}); delete it and fetch it again")


def gunzip(source: Path, target: Path) -> None:
    """Decompress ``source`` (.gz) to ``target`` atomically (a temporary file, then a rename), so
    a concurrent reader never sees half a file; a broken archive is a one-line error."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with gzip.open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, target)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno:
            raise
        raise corrupt_error(source, f"not a complete gzip file: {exc}") from None


def download_file(url: str, target: Path, dataset: str, fetch: str) -> None:
    """Download ``url`` to ``target`` through a temporary file (no half file is ever left under
    the final name); any failure is a one-line :func:`download_error`."""
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    try:
        urllib.request.urlretrieve(url, partial)  # noqa: S310 - official dataset URLs only
        partial.replace(target)
    except Exception as exc:  # noqa: BLE001 - any failure of the download is reported
        partial.unlink(missing_ok=True)
        raise download_error(dataset, target.parent, exc, fetch) from None


def extract_zip(archive: Path, target: Path) -> None:
    """Extract a zip archive into ``target``; a broken archive is a one-line error naming it."""
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise corrupt_error(archive, f"not a complete zip archive: {exc}") from None


def unpack_archive(
    here: Path,
    *,
    url: str,
    outer: str,
    inner: str | None,
    dataset: str,
    fetch: str,
    download: bool,
    expected: str,
) -> None:
    """Make a UCI archive's files present in ``here``: download ``outer`` when neither zip is
    there (or a one-line :func:`missing_error` naming ``expected`` when downloading is off),
    then extract it and, where the UCI download wraps the dataset's own zip, ``inner`` too."""
    have_inner = inner is not None and (here / inner).is_file()
    if not have_inner and not (here / outer).is_file():
        if not download:
            raise missing_error(dataset, here, [expected], fetch)
        download_file(url, here / outer, dataset, fetch)
    if inner is None:
        extract_zip(here / outer, here)
        return
    if not (here / inner).is_file():
        extract_zip(here / outer, here)  # the UCI download wraps the dataset's zip
    extract_zip(here / inner, here)
