"""Where downloadable datasets live, how they are fetched, and the errors when they are missing,
broken or cannot be written: the one error boundary of the data layer.

Every benchmark whose files are downloaded (MNIST, UCR/UEA sets that aeon does not ship, UCI-HAR,
...) reads them from one data root:

1. ``benchmark.root`` when the config sets it (``--root`` for ``clstm data``);
2. else the environment variable ``CLSTM_DATA``;
3. else ``$XDG_CACHE_HOME/clstm`` (``~/.cache/clstm``).

Below the root each dataset keeps the layout of the library that reads it (torchvision's
``MNIST/raw/*-ubyte``, aeon's ``<name>/<name>_TRAIN.ts``, the official archives' folders), so an
existing torchvision or aeon cache can be pointed to with ``root``. With ``benchmark.download:
false`` (or no network) missing files are an error that names the folder, the files and how to
fetch them (``clstm data fetch NAME`` on a machine with network).

What a cluster needs of it:

- **No hang.** A download connects and reads with a timeout (:data:`TIMEOUT` seconds, or
  ``$CLSTM_DOWNLOAD_TIMEOUT``) and is tried :data:`TRIES` times; then one line names the URL and
  the proxy variables in effect. A progress line is shown on a terminal (not with ``--quiet``,
  :func:`quiet`, nor when output goes to a file), and Ctrl-C stops a download at once.
- **Nothing half-written.** Downloads go to a ``.part`` file, decompressed and extracted files to
  temporary names, renamed into place when complete; a failure removes them.
- **Shared roots.** Files get the permissions of the user's umask (a data root shared by a group
  stays readable by it).
- **Integrity.** A download is checked against the checksum its source publishes, where one is
  known (MNIST's, from torchvision). Every archive's SHA-256 is recorded in ``SHA256SUMS`` beside
  it the first time clstm uses it (``sha256sum -c SHA256SUMS`` checks them by hand) and verified
  whenever clstm reads it again.
- **One line for every fault.** :func:`boundary` turns what the file system, a decompressor or an
  archive raises (a root that is a file, no permission, a full disk, a truncated archive) into a
  :class:`~clstm.errors.DataError` naming the path and the fix (``clstm`` exits 2).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clstm.config.schema import StreamOptions, param
from clstm.errors import DataError

ENV_VAR = "CLSTM_DATA"
#: seconds a download may wait to connect, and then for each block of data
TIMEOUT = float(os.environ.get("CLSTM_DOWNLOAD_TIMEOUT") or 30)
#: times a download is tried before it is given up (a hanging connection: about TRIES x TIMEOUT)
TRIES = 2
#: the file beside archives that records their SHA-256 (``sha256sum`` format)
SUMS = "SHA256SUMS"
_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
_SHOW_PROGRESS = contextvars.ContextVar("clstm_show_progress", default=True)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$CLSTM_DATA``, else the per-user cache folder.

    An empty ``root`` (``--root ''``) is refused rather than read as "the default"."""
    if root is not None:
        if not str(root).strip():
            raise DataError(
                "the data root is empty (--root '' or benchmark.root: ''); give a folder, or "
                f"leave it out for ${ENV_VAR} or ~/.cache/clstm"
            )
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


# --------------------------------------------------------------------------------------------------
# One-line errors
# --------------------------------------------------------------------------------------------------


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
        f"{dataset}: could not download into {folder} ({reason}){_proxies()}; run `clstm data "
        f"fetch {fetch}` on a machine with network, or copy the files there (benchmark.root / "
        f"${ENV_VAR})"
    )


def corrupt_error(path: Path, why: str) -> DataError:
    """One line: a file exists but cannot be read as what it should be."""
    return DataError(f"{path} is not a valid data file ({why}); delete it and fetch it again")


def _proxies() -> str:
    """``; proxy: https_proxy=http://host:3128`` for the proxy variables set (no passwords)."""
    import re

    found = []
    for name in _PROXY_VARIABLES:
        for key in (name, name.upper()):
            if os.environ.get(key):
                value = re.sub(r"//[^/@]*@", "//***@", os.environ[key])  # user:password@ hidden
                found.append(f"{key}={value}")
                break
    return f"; proxy: {', '.join(found)}" if found else ""


def _blocking_file(path: str | os.PathLike | None) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder (why a folder cannot be
    made there), or None."""
    if not path:
        return None
    for parent in [Path(path), *Path(path).parents]:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def os_error(dataset: str, exc: OSError) -> DataError:
    """One line for a file-system fault while fetching or reading ``dataset``'s files."""
    path = exc.filename
    blocking = _blocking_file(path) if isinstance(exc, (FileExistsError, NotADirectoryError,
                                                         FileNotFoundError)) else None  # fmt: skip
    where = f"${ENV_VAR}, benchmark.root or --root"
    if blocking is not None:
        return DataError(
            f"{dataset}: {blocking} is a file, not a folder, so the data cannot go below it; "
            f"choose a data root that is a folder ({where})"
        )
    if isinstance(exc, PermissionError):
        return DataError(
            f"{dataset}: permission denied for {path}; choose a data root you can write to "
            f"({where}), or fetch into it as a user who can"
        )
    reason = exc.strerror or type(exc).__name__
    return DataError(
        f"{dataset}: cannot use {path or 'the data root'} ({reason}); free space or fix the "
        f"folder, or choose another data root ({where})"
    )


@contextlib.contextmanager
def errors_of(dataset: str) -> Iterator[None]:
    """The data layer's error boundary: within it, what the file system, a decompressor or an
    archive raises becomes a one-line :class:`DataError` naming ``dataset``, the path and the fix.
    Interruptions (Ctrl-C) pass through."""
    try:
        yield
    except DataError:
        raise
    except OSError as exc:
        raise os_error(dataset, exc) from None
    except (zlib.error, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise DataError(
            f"{dataset}: a file is damaged ({type(exc).__name__}: {exc}); delete the dataset's "
            "folder in the data root and fetch it again"
        ) from None


def boundary(dataset: str) -> Callable:
    """Decorate a loader's public function with :func:`errors_of`."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def guarded(*args, **kwargs):
            with errors_of(dataset):
                return function(*args, **kwargs)

        return guarded

    return decorate


# --------------------------------------------------------------------------------------------------
# Files: folders, permissions, checksums
# --------------------------------------------------------------------------------------------------


def folder_for(path: Path, dataset: str) -> Path:
    """``path`` made (with its parents) if needed; a one-line error if it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise os_error(dataset, exc) from None
    return path


def _file_mode() -> int:
    """The mode a file created now gets by default (0666 less the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recorded(folder: Path) -> dict[str, str]:
    try:
        lines = (folder / SUMS).read_text().splitlines()
    except FileNotFoundError:
        return {}
    sums = {}
    for line in lines:
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            sums[name] = digest
    return sums


def verify(archive: Path, dataset: str) -> None:
    """Check ``archive`` against its SHA-256 recorded in ``SHA256SUMS`` beside it, or record it
    there when it is used for the first time (a one-line error when it changed since)."""
    sums = _recorded(archive.parent)
    digest = sha256(archive)
    if archive.name in sums:
        if sums[archive.name] != digest:
            raise DataError(
                f"{dataset}: {archive} is not the file first used from this data root (its "
                f"SHA-256 differs from the one in {archive.parent / SUMS}); delete both and fetch "
                "it again"
            )
        return
    sums[archive.name] = digest
    text = "".join(f"{d}  {n}\n" for n, d in sorted(sums.items()))
    with contextlib.suppress(OSError):  # a read-only shared root: used as it is, not recorded
        _write_atomic(archive.parent / SUMS, text.encode())


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def gunzip(source: Path, target: Path, dataset: str = "the dataset") -> None:
    """Decompress ``source`` (.gz) to ``target`` atomically (a temporary file, then a rename),
    ``source`` checked first (:func:`verify`), so a concurrent reader never sees half a file; a
    broken archive is a one-line error and leaves nothing behind."""
    verify(source, dataset)
    folder_for(target.parent, dataset)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with gzip.open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600: others sharing the root must read it
        os.replace(tmp, target)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise corrupt_error(source, f"not a complete gzip file: {exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def extract_zip(archive: Path, target: Path, dataset: str = "the dataset") -> None:
    """Extract a zip archive into ``target``, ``archive`` checked first (:func:`verify`): into a
    temporary folder beside, whose entries are renamed into place once all are extracted, so a
    broken archive (a one-line error) leaves no partial file behind."""
    verify(archive, dataset)
    work = Path(tempfile.mkdtemp(dir=folder_for(target, dataset), prefix=".extract-"))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(work)
        for entry in work.iterdir():
            destination = target / entry.name
            if destination.is_dir() and entry.is_dir():
                shutil.rmtree(destination)  # an earlier, partial copy
            os.replace(entry, destination)
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, NotImplementedError) as exc:
        raise corrupt_error(archive, f"not a complete zip archive: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No download progress lines within the block (``--quiet``)."""
    token = _SHOW_PROGRESS.set(False)
    try:
        yield
    finally:
        _SHOW_PROGRESS.reset(token)


class _Progress:
    """``  downloading NAME: 12.3 / 58.1 MB (21%)`` rewritten in place on a terminal."""

    def __init__(self, name: str, total: int):
        self.name, self.total, self.done, self.shown = name, total, 0, 0.0
        self.on = _SHOW_PROGRESS.get() and sys.stderr.isatty()

    def add(self, n: int) -> None:
        self.done += n
        if self.on and time.monotonic() - self.shown > 0.2:
            self.shown = time.monotonic()
            of = f" / {self.total / 1e6:.1f} MB ({100 * self.done / self.total:.0f}%)" if (
                self.total) else " MB"  # fmt: skip
            print(f"\r  downloading {self.name}: {self.done / 1e6:.1f}{of}", end="",
                  file=sys.stderr, flush=True)  # fmt: skip

    def close(self) -> None:
        if self.on and self.shown:
            print(file=sys.stderr, flush=True)


def download_file(
    url: str, target: Path, dataset: str, fetch: str, *, md5: str | None = None
) -> None:
    """Download ``url`` to ``target`` through a ``.part`` file renamed when complete (checked
    against ``md5`` when its source publishes one, then recorded, :func:`verify`). Connecting and
    every read wait at most :data:`TIMEOUT` seconds; :data:`TRIES` tries; a failure is one line
    naming the URL and the proxy variables in effect."""
    import http.client
    import urllib.error
    import urllib.request

    from clstm.run import stopping

    folder_for(target.parent, dataset)
    partial = target.with_name(f".{target.name}.part")
    reason = ""
    for attempt in range(TRIES):
        if attempt:
            time.sleep(min(2**attempt, 5))
        try:
            # an opener per download: it reads the proxy variables now (urlopen's is made once)
            opener = urllib.request.build_opener()
            with opener.open(url, timeout=TIMEOUT) as response, open(partial, "wb") as out:
                progress = _Progress(target.name, int(response.headers.get("Content-Length") or 0))
                try:
                    while block := response.read(1 << 16):
                        stopping.check()  # Ctrl-C stops a download at once
                        out.write(block)
                        progress.add(len(block))
                finally:
                    progress.close()
            if md5 is not None and hashlib.md5(partial.read_bytes()).hexdigest() != md5:
                raise ValueError(f"its MD5 is not the published {md5}")
            partial.replace(target)
            break
        except DataError:
            partial.unlink(missing_ok=True)
            raise
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            partial.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not _network_error(exc):
                raise os_error(dataset, exc) from None
            reason = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    else:
        raise DataError(
            f"{dataset}: could not download {url} after {TRIES} tries ({reason}){_proxies()}; "
            f"run `clstm data fetch {fetch}` on a machine with network, or copy the files into "
            f"{target.parent} (benchmark.root / ${ENV_VAR})"
        )
    verify(target, dataset)  # recorded now: a later change to the file is refused


def _network_error(exc: OSError) -> bool:
    """Whether an OSError of a download is the network's (not the data root's)."""
    import socket
    import urllib.error

    if isinstance(exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError)):
        return True
    return exc.filename is None  # file-system errors name their file; socket errors do not


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
        extract_zip(here / outer, here, dataset)
        return
    if not (here / inner).is_file():
        extract_zip(here / outer, here, dataset)  # the UCI download wraps the dataset's zip
    extract_zip(here / inner, here, dataset)
