"""Run one experiment (one strategy, one seed) into ``<out>/<experiment>/<strategy>/seed<k>/``.

The loop is the continual-learning protocol, on Avalanche's strategy::

    eval(test stream)                      -> initial row b
    for each training experience i:
        train(experience i)                -> LSTMPlugin resets state, LR, optimizer state
        eval(test stream)                  -> row R[i] of the accuracy matrix

A run directory holds ``config.yaml`` (fully resolved), ``meta.json`` (provenance, written before
training starts and completed at the end), ``metrics.json``, ``accuracy_matrix.csv`` and the
TensorBoard files under ``tb/``. Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from clstm import __version__
from clstm import metrics as clm
from clstm.config import ConfigError, ExperimentConfig, config_hash, load_config, to_yaml
from clstm.io import read_json, write_json_atomic, write_text_atomic

PACKAGES = ("torch", "avalanche-lib", "numpy", "scikit-learn", "tensorboard", "pyyaml")


class RunExistsError(ConfigError):
    """The run directory already holds a run; pass ``overwrite=True`` (``--overwrite``)."""


class RunFailed(RuntimeError):
    """The run raised an unexpected error; its directory holds ``traceback.txt``."""


@dataclass
class RunResult:
    """What a run produced. ``accuracy_matrix[i, j]``: accuracy on experience j after training i."""

    run_dir: Path
    status: str
    metrics: dict
    accuracy_matrix: np.ndarray
    initial_accuracy: np.ndarray | None
    experience_names: list[str]
    error: str | None = None


def run_dir_for(
    config: ExperimentConfig, out: str | Path = "results", run_name: str | None = None
) -> Path:
    """``<out>/<experiment>/<run name>/seed<k>``; the run name defaults to the strategy's name."""
    return Path(out) / config.name / (run_name or config.strategy.name) / f"seed{config.seed}"


def resolve_device(spec: str):
    """``auto`` -> CUDA when available, else CPU; a clear error if CUDA is asked for but absent."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device: '{spec}' requested but CUDA is not available; use auto or cpu"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device: '{spec}' does not exist; this machine has "
                f"{torch.cuda.device_count()} GPU(s)"
            )
    return torch.device(spec)


@contextlib.contextmanager
def quiet_library_warnings():
    """Silence known, harmless library warnings, by message, for the duration of a run."""
    with warnings.catch_warnings():
        # qpsolvers (imported by Avalanche for GEM) warns on import when no QP solver is installed.
        warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
        # numpy warns when it first describes a float type after denormals are flushed (our CPU
        # speed setting, see _train_and_evaluate); the value it reports is then correctly zero.
        warnings.filterwarnings(
            "ignore", message="The value of the smallest subnormal", category=UserWarning
        )
        yield


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random number generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


CHECKPOINT = "checkpoint.pt"


def run_status(run_dir: Path) -> str | None:
    """The status recorded in a run directory (``metrics.json``, else ``meta.json``), or None."""
    for name in ("metrics.json", "meta.json"):
        try:
            return read_json(run_dir / name).get("status")
        except (OSError, ValueError):
            continue
    return None


def check_run_dir(run_dir: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuse to write into a directory that holds a run, unless overwriting or resuming."""
    if not run_dir.exists() or overwrite or resume:
        return
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        return
    status = "unknown"
    for name in ("metrics.json", "meta.json"):
        try:
            status = read_json(run_dir / name).get("status", status)
            break
        except (OSError, ValueError):
            continue
    raise RunExistsError(
        f"{run_dir} already holds a run (status: {status}); pass --overwrite to replace it "
        "or --out to write elsewhere"
    )


def run_experiment(
    config: str | Path | Mapping[str, Any] | ExperimentConfig,
    *,
    benchmark=None,
    overrides: Iterable[str] = (),
    seed: int | None = None,
    out: str | Path = "results",
    overwrite: bool = False,
    quiet: bool = True,
    plugins: Sequence[Any] = (),
    command: Sequence[str] | None = None,
    run_name: str | None = None,
    resume: bool = False,
) -> RunResult:
    """Run one experiment and write its run directory; returns a :class:`RunResult`.

    :param config: a YAML path, a mapping or an :class:`ExperimentConfig`.
    :param benchmark: a :class:`clstm.data.sequences.SequenceBenchmark` (e.g. from
        :func:`clstm.benchmark_from_arrays`) or an Avalanche benchmark in clstm's padded format,
        used instead of building ``config.benchmark``.
    :param overrides: ``"dotted.key=value"`` strings applied to the config.
    :param seed: replaces ``config.seed``.
    :param out: root of the run directories.
    :param overwrite: replace an existing run directory (otherwise :class:`RunExistsError`).
    :param quiet: print no progress (the CLI prints progress unless ``--quiet``).
    :param plugins: extra Avalanche plugins appended to the strategy's.
    :param command: the command line to record in ``meta.json`` (default ``sys.argv``).
    :param run_name: the run directory's name under the experiment (default: the strategy's
        name; sweeps add the swept values).
    :param resume: a completed run is returned as it is; an interrupted one continues from its
        last checkpoint (after its last completed experience), with the same config; a run that
        left no checkpoint starts again.

    Raises :class:`ConfigError` before anything is written for a bad config, a missing file or an
    existing run; :class:`RunFailed` after writing the run directory if training raised. A run
    whose loss becomes NaN/inf returns with ``status == "diverged"``.
    """
    cfg = load_config(config, overrides)
    if seed is not None:
        cfg = load_config(cfg, [f"seed={seed}"])
    run_dir = run_dir_for(cfg, out, run_name)
    check_run_dir(run_dir, overwrite, resume)
    if resume and run_status(run_dir) == "completed":
        return load_run(run_dir)
    resuming = resume and (run_dir / CHECKPOINT).exists()
    if resuming and read_json(run_dir / "meta.json").get("config_hash") != config_hash(cfg):
        raise ConfigError(
            f"{run_dir} was started with a different config (see its config.yaml); resume it "
            "with that config, or pass --overwrite to start again"
        )
    started = time.perf_counter()

    with quiet_library_warnings():
        device = resolve_device(cfg.device)
        bench = _build_benchmark(cfg) if benchmark is None else _adopt_benchmark(benchmark)
        _check_model_fits(cfg, bench)
        if (overwrite or (resume and not resuming)) and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if resuming:
            meta = read_json(run_dir / "meta.json")
            meta.setdefault("resumed", []).append(_now())
        else:
            meta = _provenance(cfg, device, command, _now())
            meta["benchmark"] = bench.describe()
            write_text_atomic(run_dir / "config.yaml", to_yaml(cfg))
        write_json_atomic(run_dir / "meta.json", meta)
        status, error, failure, timings, matrices = _train_and_evaluate(
            cfg, bench, device, run_dir, quiet, plugins, resuming, meta
        )
        if status == "completed" and cfg.checkpoint == "remove":
            (run_dir / CHECKPOINT).unlink(missing_ok=True)

    initial, R = _full_result(matrices["test"], bench.n_experiences)
    wall = time.perf_counter() - started
    metrics = _metrics_json(cfg, bench, status, error, R, initial, len(timings), wall)
    if "valid" in matrices:
        v_initial, v_R = _full_result(matrices["valid"], bench.n_experiences)
        metrics["validation"] = _matrix_summary(status, v_R, v_initial)
    write_json_atomic(run_dir / "metrics.json", metrics)
    csv_text = _matrix_csv(bench.experience_names, R, initial)
    write_text_atomic(run_dir / "accuracy_matrix.csv", csv_text)
    meta.update(status=status, error=error, ended=_now(), wall_time_s=round(wall, 3))
    meta["timings"] = timings
    write_json_atomic(run_dir / "meta.json", meta)
    if status == "interrupted":
        raise failure[0]
    if failure is not None:
        write_text_atomic(run_dir / "traceback.txt", failure[1])
        raise RunFailed(f"{error} (traceback in {run_dir / 'traceback.txt'})") from failure[0]
    return RunResult(
        run_dir=run_dir,
        status=status,
        metrics=metrics,
        accuracy_matrix=R,
        initial_accuracy=initial,
        experience_names=list(bench.experience_names),
        error=error,
    )


def load_run(run_dir: str | Path) -> RunResult:
    """A :class:`RunResult` read back from a finished run directory."""
    run_dir = Path(run_dir)
    m = read_json(run_dir / "metrics.json")
    R = np.array(m["accuracy_matrix"], dtype=float)
    initial = m["initial_accuracy"]
    return RunResult(
        run_dir=run_dir,
        status=m["status"],
        metrics=m,
        accuracy_matrix=R,
        initial_accuracy=np.array(initial, dtype=float) if initial is not None else None,
        experience_names=list(m["experience_names"]),
        error=m["error"],
    )


def _build_benchmark(cfg: ExperimentConfig):
    from clstm.data.arrays import DataError
    from clstm.data.registry import benchmark_module

    try:
        return benchmark_module(cfg.benchmark.name).build(cfg.benchmark)
    except DataError as exc:
        raise ConfigError(f"benchmark '{cfg.benchmark.name}': {exc}") from None


def _adopt_benchmark(benchmark):
    from clstm.data.sequences import as_sequence_benchmark

    try:
        return as_sequence_benchmark(benchmark)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_model_fits(cfg: ExperimentConfig, bench) -> None:
    from clstm.strategies import check_scenario, check_stateful

    check_scenario(cfg.strategy.name, bench.scenario_name)
    if cfg.train.state == "stateful":
        check_stateful(cfg.strategy.name)
        if bench.windows_per_series is None:
            raise ConfigError(
                "train.state: stateful needs a benchmark of consecutive windows of long series "
                "(e.g. benchmark.name: cued_recall)"
            )
        if cfg.model.bidirectional:
            raise ConfigError("train.state: stateful cannot be combined with model.bidirectional")
    if cfg.model.adapter == "projection" and bench.scenario_name != "task":
        raise ConfigError(
            "model.adapter: projection needs task labels to pick each dataset's projection; "
            "use benchmark.scenario: task, or model.adapter: pad"
        )


def _full_result(metric, n_experiences: int):
    """``(initial, R)`` with ``R`` always ``T x T`` (NaN where never measured)."""
    initial, R = metric.result()
    if R.shape[0] != n_experiences:  # stopped before evaluating anything
        R = np.full((n_experiences,) * 2, np.nan)
    return initial, R


def _train_and_evaluate(cfg, bench, device, run_dir, quiet, plugins, resuming, meta):
    """The protocol loop. Returns status, error, (exception, traceback) or None, timings, metrics.

    With ``resuming`` the strategy (model, optimizer, plugin states, metrics so far, RNG states)
    is restored from the run's checkpoint and the loop continues after its last experience.
    """
    import torch
    from avalanche.logging import TensorboardLogger

    from clstm.checkpoint import load_strategy, save_strategy
    from clstm.logging import ProgressLogger
    from clstm.models import build_model
    from clstm.plugins import AccuracyMatrixMetric, RunDiverged
    from clstm.plugins.evaluation import LeanEvaluationPlugin
    from clstm.plugins.training_curves import TrainingCurvesMetric
    from clstm.strategies import STRATEGIES, build_strategy

    if device.type == "cpu":
        # Vanishing gradients through long sequences become denormal floats, which are ~6x slower.
        torch.set_flush_denormal(True)
    else:  # CUDA: deterministic cuDNN kernels, no autotuning (see README, Determinism)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    seed_everything(cfg.seed)
    model = build_model(cfg.model, benchmark=bench, stateful=cfg.train.state == "stateful")
    matrices = {"test": AccuracyMatrixMetric()}
    if bench.has_validation:
        matrices["valid"] = AccuracyMatrixMetric(stream="valid", prefix="valid/")
    tensorboard = TensorboardLogger(run_dir / "tb")
    loggers = [tensorboard] if quiet else [tensorboard, ProgressLogger(bench.experience_names)]
    evaluator = LeanEvaluationPlugin(
        TrainingCurvesMetric(),
        *matrices.values(),
        loggers=loggers,
    )
    strategy = build_strategy(
        cfg, model=model, device=device, evaluator=evaluator, plugins=plugins,
        windows_per_series=bench.windows_per_series,
    )  # fmt: skip
    done = 0
    if resuming:
        strategy, done = load_strategy(strategy, run_dir / CHECKPOINT, device)
        for metric in strategy.evaluator.metrics:  # the restored metrics hold the rows so far
            if isinstance(metric, AccuracyMatrixMetric):
                matrices[metric.stream] = metric
        tensorboard = next(lg for lg in strategy.evaluator.loggers if hasattr(lg, "writer"))
    scenario = bench.scenario
    streams = [scenario.test_stream] + ([scenario.valid_stream] if "valid" in matrices else [])
    status, error, failure, timings = "completed", None, None, list(meta.get("timings", []))
    try:
        if cfg.eval.initial and not resuming:
            t0 = time.perf_counter()
            for stream in streams:
                strategy.eval(stream)
            meta["initial_eval_s"] = round(time.perf_counter() - t0, 3)
        once = STRATEGIES[cfg.strategy.name].trains_once  # joint: one call on the whole stream
        chunks = [scenario.train_stream] if once else list(scenario.train_stream)[done:]
        for chunk in chunks:
            t0 = time.perf_counter()
            strategy.train(chunk)
            t1 = time.perf_counter()
            for stream in streams:
                strategy.eval(stream)
            t2 = time.perf_counter()
            name = "all" if once else bench.experience_names[chunk.current_experience]
            timings.append(
                {"experience": name, "train_s": round(t1 - t0, 3), "eval_s": round(t2 - t1, 3)}
            )
            if (
                cfg.checkpoint != "off"
                and not once
                and STRATEGIES[cfg.strategy.name].checkpointable
            ):
                save_strategy(strategy, run_dir / CHECKPOINT)
            meta["timings"] = timings  # progress on disk, for a run that gets killed
            write_json_atomic(run_dir / "meta.json", meta)
        _write_hparams(tensorboard.writer, cfg, *matrices["test"].result())
    except RunDiverged as exc:
        status, error = "diverged", str(exc)
    except KeyboardInterrupt as exc:  # record what was measured, then let the caller re-raise
        status, error = "interrupted", "interrupted by the user (Ctrl-C)"
        failure = (exc, traceback.format_exc())
    except Exception as exc:  # recorded in the run directory, then re-raised by the caller
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        failure = (exc, traceback.format_exc())
    finally:
        tensorboard.writer.close()
    return status, error, failure, timings, matrices


def _matrix_summary(status, R, initial) -> dict:
    """The accuracy matrix, initial row and every metric (``None`` unless the run completed).

    A completed run with only the last row measured (``joint``: no intermediate models) gets ACC
    and the final accuracies; the metrics that need intermediate rows stay ``None``.
    """
    complete = status == "completed" and not np.isnan(R).any()
    summary = clm.summarize(R, initial) if complete else {}
    if status == "completed" and not complete and not np.isnan(R[-1]).any():
        # average_accuracy reads only the last row; the unmeasured rows do not enter it.
        acc = clm.average_accuracy(np.nan_to_num(R))
        summary = {"acc": acc, "per_experience": {"final_accuracy": R[-1].tolist()}}
    keys = ("acc", "bwt", "fwt", "forgetting", "forgetting_learned", "learning_accuracy")
    return {
        "accuracy_matrix": R.tolist(),
        "initial_accuracy": initial.tolist() if initial is not None else None,
        **{k: summary.get(k) for k in keys},
        "per_experience": summary.get("per_experience"),
    }


def _write_hparams(writer, cfg, initial, R) -> None:
    """TensorBoard HParams of a completed run, in the run's own TensorBoard run.

    Hyperparameters: strategy and its options, seed, the main training, model and benchmark
    settings; metrics: the final ``cl/ACC``, ``cl/BWT`` and ``cl/forgetting`` scalars already
    logged (the HParams dashboard reads their last values).
    """
    from torch.utils.tensorboard.summary import hparams

    from clstm.config import to_dict

    values = {"strategy": cfg.strategy.name, "seed": cfg.seed}
    values |= {f"strategy.{k}": v for k, v in to_dict(cfg.strategy).items() if k != "name"}
    for section in ("train", "model"):
        values |= {f"{section}.{k}": v for k, v in to_dict(getattr(cfg, section)).items()}
    values |= {"benchmark": cfg.benchmark.name, "scenario": cfg.benchmark.scenario}
    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in values.items()}
    summary = _matrix_summary("completed", R, initial)
    final = {f"cl/{name}": summary.get(key) for name, key in
             (("ACC", "acc"), ("BWT", "bwt"), ("forgetting", "forgetting"))}  # fmt: skip
    final = {k: v for k, v in final.items() if v is not None}
    for item in hparams(values, final):
        writer.file_writer.add_summary(item)


def _metrics_json(cfg, bench, status, error, R, initial, trained, wall) -> dict:
    return {
        "experiment": cfg.name,
        "strategy": cfg.strategy.name,
        "seed": cfg.seed,
        "status": status,
        "error": error,
        "scenario": bench.scenario_name,
        "experience_names": list(bench.experience_names),
        "experiences_trained": trained,
        **_matrix_summary(status, R, initial),
        "wall_time_s": round(wall, 3),
    }


def _matrix_csv(names: Sequence[str], R: np.ndarray, initial: np.ndarray | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trained_on", *names])
    rows = ([("(initial)", initial)] if initial is not None else []) + list(
        zip(names, R, strict=True)
    )
    for label, row in rows:
        writer.writerow([label, *("" if np.isnan(v) else f"{v:.6f}" for v in row)])
    return buffer.getvalue()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _provenance(cfg, device, command, started_at: str) -> dict:
    import torch

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "experiment": cfg.name,
        "strategy": cfg.strategy.name,
        "seed": cfg.seed,
        "status": "running",
        "error": None,
        "command": list(command) if command is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "config_hash": config_hash(cfg),
        "clstm_version": __version__,
        "python": platform.python_version(),
        "packages": versions,
        "git": _git_state(Path(__file__).resolve().parent.parent),
        "host": platform.node(),
        "platform": platform.platform(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "started": started_at,
        "ended": None,
        "wall_time_s": None,
        "timings": [],
    }


def _git_state(path: Path) -> dict | None:
    """Commit and dirtiness of the git checkout clstm runs from, or ``None`` outside one."""
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
