"""Many runs: seeds x grid of config values, run one by one or in parallel worker processes.

A sweep comes from the command line (``--seeds 0-4 --grid strategy.name=naive,replay``) or from a
``sweep:`` section of the experiment YAML::

    sweep:
      seeds: 0-4                 # or [0, 1, 2]
      grid:
        strategy.name: [naive, replay, ewc]
        train.lr: [0.01, 0.001]

Every combination x seed is one run, in ``<out>/<experiment>/<run name>/seed<k>/``; the run name is
the strategy's name followed by the other swept values (``replay_train.lr=0.01``), so runs are told
apart in TensorBoard. ``<out>/<experiment>/sweep.json`` lists every run and its status and is
rewritten (atomically) as runs finish. A failing run is recorded with its error; the others go on.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from clstm.config import (
    ConfigError,
    ExperimentConfig,
    apply_override,
    build,
    load_yaml,
    read_yaml,
)
from clstm.io import write_json_atomic


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its name, seed and the overrides that make it."""

    run_name: str
    seed: int
    overrides: tuple[str, ...]


@dataclass
class SweepResult:
    """What a sweep produced: one summary dict per run (``status``, ``error``, metrics)."""

    summary_path: Path
    runs: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.runs if r["status"] != "completed"]


def parse_seeds(text: str | int | Sequence[int]) -> tuple[int, ...]:
    """``"0-4"`` -> (0, 1, 2, 3, 4); ``"0,3,7"``, ``3`` or ``[0, 3]`` as given."""
    if isinstance(text, int) and not isinstance(text, bool):
        values = [text]
    elif isinstance(text, (list, tuple)):
        values = list(text)
    else:
        values = []
        for part in str(text).split(","):
            part = part.strip()
            match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if match:
                lo, hi = int(match[1]), int(match[2])
                if lo > hi:
                    raise ConfigError(f"seeds: range '{part}' goes backwards")
                values += range(lo, hi + 1)
            elif part.isdigit():
                values.append(int(part))
            else:
                raise ConfigError(f"seeds: '{part}' is not a seed or a range like 0-4")
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
        raise ConfigError(f"seeds: expected non-negative integers, got {text!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"seeds: a seed is listed twice in {text!r}")
    return tuple(values)


def _split_values(text: str) -> list[str]:
    """Split ``a,b,[1, 2]`` on top-level commas (not inside brackets)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["train.lr=0.01,0.001"]`` -> ``{"train.lr": [0.01, 0.001]}`` (values read as YAML)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(
                f"--grid expects key=value1,value2 (e.g. train.lr=0.01,0.001), got '{item}'"
            )
        if key in grid:
            raise ConfigError(f"--grid: '{key}' is given twice")
        grid[key] = [load_yaml(v) for v in _split_values(text)]
    return grid


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def expand(
    raw: Mapping[str, Any], seeds: Sequence[int], grid: Mapping[str, list[Any]]
) -> list[RunSpec]:
    """Every grid combination x seed, validated; raises :class:`ConfigError` on a bad value."""
    keys = list(grid)
    specs = []
    for values in product(*(grid[k] for k in keys)) if keys else [()]:
        overrides = tuple(f"{k}={_text(v)}" for k, v in zip(keys, values, strict=True))
        trial = _deep_copy(raw)
        for item in overrides:
            apply_override(trial, item)
        cfg = build(ExperimentConfig, trial)  # a bad grid value fails here, before any run
        name = cfg.strategy.name + "".join(
            f"_{k}={_text(v)}" for k, v in zip(keys, values, strict=True) if k != "strategy.name"
        )
        specs += [RunSpec(name, seed, overrides) for seed in seeds]
    return specs


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return load_yaml(yaml.safe_dump(dict(raw)))


def read_sweep_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config without its sweep section, sweep section or {})`` from an experiment YAML."""
    raw = read_yaml(Path(path))
    raw.setdefault("name", Path(path).stem)
    sweep = raw.pop("sweep", None) or {}
    if not isinstance(sweep, Mapping) or set(sweep) - {"seeds", "grid"}:
        raise ConfigError("sweep: expected a mapping with `seeds` and/or `grid`")
    grid = sweep.get("grid") or {}
    if not isinstance(grid, Mapping) or any(
        not isinstance(v, list) or not v for v in grid.values()
    ):
        raise ConfigError("sweep.grid: expected `dotted.key: [value, ...]` entries")
    return raw, dict(sweep)


def _run_one(
    raw: dict, spec: RunSpec, out: str, overwrite: bool, threads: int, resume: bool = False
) -> dict:
    """Run one sweep point (in a worker process or in-process); never raises."""
    started = time.perf_counter()
    summary = {"run_name": spec.run_name, "seed": spec.seed, "overrides": list(spec.overrides)}
    try:
        import torch

        torch.set_num_threads(threads)
        from clstm.runner import RunFailed, run_experiment

        try:
            result = run_experiment(
                raw, overrides=spec.overrides, seed=spec.seed, out=out, overwrite=overwrite,
                quiet=True, run_name=spec.run_name, resume=resume,
            )  # fmt: skip
        except (ConfigError, RunFailed) as exc:
            return {**summary, "status": "failed", "error": str(exc), "run_dir": None}
        m = result.metrics
        return {
            **summary, "status": result.status, "error": result.error,
            "run_dir": str(result.run_dir), "acc": m["acc"], "bwt": m["bwt"],
            "forgetting": m["forgetting"], "wall_time_s": round(time.perf_counter() - started, 2),
        }  # fmt: skip
    except Exception as exc:  # anything else: recorded, the sweep goes on
        return {**summary, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def run_sweep(
    raw: Mapping[str, Any],
    *,
    seeds: Sequence[int] = (0,),
    grid: Mapping[str, list[Any]] | None = None,
    out: str | Path = "results",
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    backend: str = "local",
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    on_result: Callable[[dict, int, int], None] | None = None,
) -> SweepResult:
    """Run every grid combination x seed; returns the per-run summaries.

    ``workers > 1`` runs that many runs at once in separate processes, each with
    ``cpu_count // workers`` torch threads (no oversubscription). Existing run directories are
    refused before anything starts unless ``overwrite``; with ``resume`` completed runs are kept
    (and reported) and interrupted ones continue from their checkpoints.

    ``backend="ray"`` submits every run as a Ray task needing ``cpus_per_run`` CPUs and
    ``gpus_per_run`` GPUs, on the cluster at ``address`` (``"auto"``: the one this machine
    belongs to) or on a local Ray instance started for the sweep; ``out`` must then be on a file
    system all nodes see.
    """
    from clstm.runner import check_run_dir

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend must be local or ray, got '{backend}'")
    if backend == "ray":
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--backend ray needs the ray package: pip install 'clstm[ray]'"
            ) from None
    specs = expand(raw, seeds, grid or {})
    base = build(ExperimentConfig, _deep_copy(raw))
    for spec in specs:
        run_dir = Path(out) / base.name / spec.run_name / f"seed{spec.seed}"
        check_run_dir(run_dir, overwrite, resume)
    summary_path = Path(out) / base.name / "sweep.json"
    threads = max(1, (os.cpu_count() or 1) // workers)
    rows: dict[tuple[str, int], dict] = {
        (s.run_name, s.seed): {"run_name": s.run_name, "seed": s.seed, "status": "pending"}
        for s in specs
    }

    def record(row: dict) -> None:
        rows[(row["run_name"], row["seed"])] = row
        write_json_atomic(
            summary_path,
            {"experiment": base.name, "workers": workers, "runs": list(rows.values())},
        )
        if on_result is not None:
            done = sum(r["status"] != "pending" for r in rows.values())
            on_result(row, done, len(rows))

    write_json_atomic(
        summary_path, {"experiment": base.name, "workers": workers, "runs": list(rows.values())}
    )
    payload = _deep_copy(raw)
    if backend == "ray":
        _run_on_ray(
            ray, payload, specs, str(Path(out).resolve()), overwrite, resume, record,
            address, cpus_per_run, gpus_per_run,
        )  # fmt: skip
    elif workers == 1:
        for spec in specs:
            record(_run_one(payload, spec, str(out), overwrite, threads, resume))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
            futures = [
                pool.submit(_run_one, payload, s, str(out), overwrite, threads, resume)
                for s in specs
            ]
            for future in as_completed(futures):
                record(future.result())
    return SweepResult(summary_path=summary_path, runs=list(rows.values()))


def _worker_context():
    """Start workers from a fork server that has imported torch and Avalanche once.

    Spawned workers each import torch + Avalanche (~5 s, competing for the same cores); forked
    ones inherit them. Forking the sweep's own process is unsafe once it has run torch ops
    (OpenMP thread pools, CUDA), so workers are forked from a fresh ``forkserver`` process that
    only imports (``clstm._worker_preload``). ``spawn`` where there is no fork server (Windows).
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["clstm._worker_preload"])
    return context


def _run_on_ray(ray, payload, specs, out, overwrite, resume, record, address, cpus, gpus) -> None:
    """Submit every run as a Ray task; record results as they finish."""
    import logging

    started_here = not ray.is_initialized()
    if started_here:
        options = {"address": address} if address else {"num_cpus": os.cpu_count()}
        ray.init(
            **options, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
        )
    try:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(_run_one)
        threads = max(1, int(cpus))
        pending = [task.remote(payload, s, out, overwrite, threads, resume) for s in specs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            record(ray.get(done[0]))
    finally:
        if started_here:
            ray.shutdown()
