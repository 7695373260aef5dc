"""What a run is, defined once: its directory, name, identity, lock and status.

A run lives in ``<out>/<experiment>/<run name>/seed<k>/``. The runner, the sweep and the report all
use this module, so the three agree on:

- **Names.** The experiment and run names are each one safe path component
  (:func:`safe_component`): no separators, no ``..``, no leading dot, bounded length. A run name
  is the strategy's name followed by every value that was changed from the command line or the
  Python API, the way sweeps add their grid values (:func:`run_name_for`):
  ``--set train.lr=0.01`` runs into ``naive_train.lr=0.01/``.
- **Identity.** A run is its fully resolved config (``config.yaml``) and its seed. The
  *identity* is the resolved config without the seed (:func:`identity`): seeds of one run name
  must share it, and ``clstm report`` averages only runs that do.
- **One writer.** :class:`RunLock` is an exclusive ``flock`` on ``.seed<k>.lock`` beside the run
  directory, taken before the directory is touched and released by the OS when the process
  ends, however it ends; a second process fails at once.
- **Status.** :func:`recorded_status` reads ``metrics.json``/``meta.json``; a ``running`` status
  whose lock nobody holds is a run that was killed, reported as ``interrupted``.

No heavy imports here (no torch, no Avalanche).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from clstm.config.schema import MAX_NAME
from clstm.errors import ConfigError, OutputError, RunExistsError, RunLockedError
from clstm.run.files import CONFIG, META, METRICS

#: longest experiment or run name used as a folder name; longer ones are cut and get a hash
MAX_COMPONENT = MAX_NAME
#: keys that never enter a run name: the experiment's name and the seed have their own folders
#: where a benchmark's files are read from, not what the experiment is: left out of run names,
#: identities and config comparisons (the data themselves are fingerprinted in meta.json)
LOCATION_KEYS = ("benchmark.root", "benchmark.download")
NOT_IN_RUN_NAME = ("name", "seed", "strategy.name", *LOCATION_KEYS)

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+~\-\[\]]")


def safe_component(text: str) -> str:
    """``text`` as one safe path component: readable, deterministic, never a path.

    Characters other than letters, digits and ``. _ = , + ~ - [ ]`` become ``_`` (so ``/`` and
    ``\\`` cannot separate folders), leading dots become ``_`` (no ``..``, no hidden folders) and
    a name longer than :data:`MAX_COMPONENT` is cut and ends in a hash of the whole text, so two
    different long names stay different.
    """
    name = _UNSAFE.sub("_", str(text))
    name = re.sub(r"^\.+", lambda m: "_" * len(m[0]), name) or "_"
    if len(name) > MAX_COMPONENT:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:10]
        name = f"{name[: MAX_COMPONENT - 11]}~{digest}"
    return name


def value_text(value: Any) -> str:
    """A config value as it appears in a run name (``[10,30]``, ``0.01``, ``true``)."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def run_name_for(strategy_name: str, changes: Iterable[tuple[str, Any]]) -> str:
    """The run name: the strategy, then ``_key=value`` for each changed key, as one safe name.

    ``changes`` are (dotted key, value) pairs: command-line ``--set`` values, API ``overrides``
    and a sweep's grid values, in the order given; a key given twice counts once, with its last
    value (the one the config gets). The experiment name, the seed and the strategy's name itself
    are left out (they have their own folders or lead the name).
    """
    latest: dict[str, Any] = {}
    for key, value in changes:
        latest.pop(key, None)  # where it was given last, with the value given last
        latest[key] = value
    parts = [strategy_name]
    parts += [f"{k}={value_text(v)}" for k, v in latest.items() if k not in NOT_IN_RUN_NAME]
    return safe_component("_".join(parts))


def parse_override(item: str) -> tuple[str, str]:
    """``"train.lr=0.01"`` -> ``("train.lr", "0.01")`` (the value as the user wrote it)."""
    key, _, text = item.partition("=")
    return key.strip(), text.strip()


def check_out(out: str | Path, *, cli: bool = False) -> Path:
    """The output root, refused when empty, a file, or not writable (one-line ConfigError)."""
    arg = "--out" if cli else "out"
    if str(out).strip() == "":
        raise ConfigError(f"{arg} is empty; give a folder for the results (e.g. results)")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{arg} {path} is a file, not a folder; choose a folder for the results")
    existing = path
    while not existing.exists():  # the nearest folder that exists must let us create the rest
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{arg} {path}: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{arg} {path}: {existing} is not writable; choose a folder you can write to"
        )
    return path


def run_dir_path(out: str | Path, experiment: str, run_name: str, seed: int) -> Path:
    """``<out>/<experiment>/<run name>/seed<k>``; each name must already be one safe component."""
    for part in (experiment, run_name):
        if part != safe_component(part):
            raise ConfigError(
                f"run/experiment name {part!r} is not a safe folder name; use letters, digits "
                "and . _ = , + ~ - [ ] only"
            )
    return Path(out) / experiment / run_name / f"seed{seed}"


# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------


def identity(config_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config without its seed (and data location, :data:`LOCATION_KEYS`): what the
    seeds of one run must share."""
    out = {k: v for k, v in config_dict.items() if k != "seed"}
    if isinstance(out.get("benchmark"), Mapping):
        out["benchmark"] = {
            k: v for k, v in out["benchmark"].items() if f"benchmark.{k}" not in LOCATION_KEYS
        }
    return out


def identity_hash(config_dict: Mapping[str, Any]) -> str:
    """A short SHA-256 of :func:`identity` (canonical JSON)."""
    text = json.dumps(identity(config_dict), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"train.lr": 0.01, ...}`` (dotted keys)."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip("."): data}


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for every key where two configs differ."""
    fa, fb = flatten(a), flatten(b)
    missing = object()
    rows = []
    for key in sorted((set(fa) | set(fb)) - set(LOCATION_KEYS)):
        va, vb = fa.get(key, missing), fb.get(key, missing)
        if va != vb:
            rows.append((key, None if va is missing else va, None if vb is missing else vb))
    return rows


def describe_differences(a: Mapping[str, Any], b: Mapping[str, Any], limit: int = 4) -> str:
    """``"train.lr 0.003 vs 0.01, train.epochs 5 vs 1"`` (at most ``limit`` keys, then ``...``)."""
    rows = differences(a, b)
    text = ", ".join(f"{k} {value_text(x)} vs {value_text(y)}" for k, x, y in rows[:limit])
    return text + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def read_config_dict(run_dir: Path) -> dict[str, Any]:
    """The resolved config recorded in ``run_dir/config.yaml``, normalised; OutputError if bad."""
    from clstm.config import load_config, to_dict

    path = run_dir / CONFIG
    try:
        return to_dict(load_config(path))
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"cannot read {path}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# One writer per run directory
# ---------------------------------------------------------------------------------------------


def lock_path(run_dir: Path) -> Path:
    """The lock file of a run: ``.seed<k>.lock`` beside (not inside) its directory.

    Outside, so that replacing the directory (``--overwrite``) keeps the lock in place.
    """
    return run_dir.parent / f".{run_dir.name}.lock"


class RunLock:
    """Exclusive, non-blocking lock on one run directory, held for as long as the run writes.

    ``flock`` locks belong to the open file: the OS releases them when the process exits, even
    by ``kill -9``, so a crashed run never blocks its ``--resume``. The lock file holds the pid
    of the writer, for the error message of the process that is refused. ``wait`` (seconds)
    retries a taken lock that long before refusing: for locks held only for a moment.
    """

    def __init__(self, run_dir: Path, wait: float = 0.0):
        self.run_dir = Path(run_dir)
        self.path = lock_path(self.run_dir)
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one writer per directory is then not enforced
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                os.close(fd)
                raise locked_error(self.run_dir) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def locked_error(run_dir: Path) -> RunLockedError:
    """The one-line refusal for a run directory that another process is writing."""
    try:
        owner = lock_path(run_dir).read_text().strip() or "unknown"
    except OSError:
        owner = "unknown"
    text = f"{run_dir} is being written by another clstm process (pid {owner}); wait for it to "
    return RunLockedError(
        text + "finish, or write elsewhere with a different out",
        cli=text + "finish, or write elsewhere with --out",
    )


def check_not_locked(run_dir: Path) -> None:
    """Refuse (RunLockedError) a run directory that another process is writing now."""
    if is_locked(run_dir):
        raise locked_error(run_dir)


def is_locked(run_dir: Path) -> bool:
    """Whether some process holds the run's lock now (i.e. it is running)."""
    try:
        import fcntl
    except ImportError:
        return False
    path = lock_path(run_dir)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


# ---------------------------------------------------------------------------------------------
# Status of a run directory
# ---------------------------------------------------------------------------------------------


def read_json_file(path: Path) -> Any:
    """A JSON file's content; :class:`OutputError` naming the file when it is unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot read {path} ({reason})") from None


def recorded_status(run_dir: Path, locked_by_us: bool = False) -> str | None:
    """The status a run directory records, or None when it holds no run.

    ``metrics.json`` (written at the end) wins over ``meta.json`` (written at the start and after
    every experience). A ``running`` status whose lock no process holds is a run that was killed:
    ``interrupted``. Raises :class:`OutputError` when the files exist but cannot be read.
    """
    for name in (METRICS, META):
        path = run_dir / name
        if path.exists():
            data = read_json_file(path)
            status = data.get("status") if isinstance(data, dict) else None
            if not isinstance(status, str):
                raise OutputError(f"cannot read {path} (it records no status)")
            if status == "running" and (locked_by_us or not is_locked(run_dir)):
                return "interrupted"
            return status
    return None


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` exists and is not an empty folder."""
    return run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir()))


def check_run_dir(run_dir: Path, overwrite: bool, resume: bool = False, *, cli: bool = False):
    """Refuse a directory that holds a run, unless overwriting or resuming (RunExistsError)."""
    if not holds_run(run_dir) or overwrite or resume:
        return
    try:
        status = recorded_status(run_dir) or "unknown"
    except OutputError:
        status = "unreadable"
    flag, resume_flag = ("--overwrite", "--resume") if cli else ("overwrite=True", "resume=True")
    out = "--out" if cli else "out"
    raise RunExistsError(
        f"{run_dir} already holds a run (status: {status}); pass overwrite=True to replace it, "
        f"resume=True to keep or continue it, or a different out",
        cli=f"{run_dir} already holds a run (status: {status}); pass {flag} to replace it, "
        f"{resume_flag} to keep or continue it, or {out} to write elsewhere",
    )
