"""What a run records about where it ran (``meta.json``'s provenance): the command, the config's
hash, clstm's, Python's and the core packages' versions, the git state of the checkout clstm runs
from, the host, the CPU model (and GPU), the device and the thread count. Used by
:mod:`clstm.run.runner`."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

from clstm import __version__
from clstm.config import config_hash

#: the packages whose versions every run records
PACKAGES = ("torch", "avalanche-lib", "numpy", "scikit-learn", "tensorboard", "pyyaml")


def now() -> str:
    """The time now, UTC, to the second (ISO 8601)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@functools.cache
def package_versions() -> dict[str, str | None]:
    """Versions of the packages a run records. Read once per process (~10 ms of metadata
    scans): the modules a process runs are those it imported, whatever is installed later."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`): the
    same seed gives slightly different numbers on another CPU model, so every run records it."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def prefetch() -> None:
    """Read the package versions and the git state in a background thread, so that the two
    ``git`` processes (~30 ms) overlap with building the benchmark instead of delaying the run."""
    threading.Thread(target=package_versions, daemon=True).start()
    threading.Thread(target=git_state, args=(CHECKOUT,), daemon=True).start()


def provenance(cfg, device, command, started_at: str) -> dict:
    """``meta.json`` of a run about to start (status ``running``; completed at its end)."""
    process = this_process(device, command)
    return {
        "experiment": cfg.name,
        "strategy": cfg.strategy.name,
        "seed": cfg.seed,
        "status": "running",
        "error": None,
        "command": process.pop("command"),
        "cwd": process.pop("cwd"),
        "config_hash": config_hash(cfg),
        **process,
        "started": started_at,
        "ended": None,
        "wall_time_s": None,
        "timings": [],
    }


def this_process(device, command) -> dict:
    """Where and with what this process runs: command, directory, versions, git state, host,
    CPU (and GPU), device, threads. A resumed run records it again for the process that
    resumes it (``meta.json``'s ``resumed``), which may run other code or another CPU."""
    import torch

    return {
        "command": list(command) if command is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "clstm_version": __version__,
        "python": platform.python_version(),
        "packages": dict(package_versions()),
        "git": git_state(CHECKOUT),
        "host": platform.node(),
        "platform": platform.platform(),
        "device": str(device),
        "cpu": cpu_model(),
        **({"gpu": torch.cuda.get_device_name(device)} if str(device).startswith("cuda") else {}),
        "torch_threads": torch.get_num_threads(),
    }


#: what a resumed run compares between the process that started it and the one resuming it
DIFFERS = {"cpu": "CPU", "device": "device", "gpu": "GPU", "git": "git state",
           "packages": "package versions", "clstm_version": "clstm version"}  # fmt: skip


def changes(started: dict, resuming: dict) -> list[str]:
    """What differs between the recorded process that started a run and the one resuming it
    (of :data:`DIFFERS`; a field the older record lacks is not compared)."""
    return [
        what
        for key, what in DIFFERS.items()
        if key in started and started.get(key) != resuming.get(key)
    ]


#: the checkout (or installed package's parent) clstm runs from
CHECKOUT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=4)
def git_state(path: Path) -> dict | None:
    """Commit and dirtiness of the git checkout clstm runs from, or ``None`` outside one.

    Read once per process: the code a process runs is what it imported when it started, so
    a later commit or edit (during a long sweep) must not be recorded for its runs."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}
