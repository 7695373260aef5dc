"""Run one experiment (one strategy, one seed) into ``<out>/<experiment>/<strategy>/seed<k>/``.

The protocol loop itself is :func:`clstm.run.protocol.train_and_evaluate`; this module owns the
run around it: the plan (resume, overwrite, locks), the benchmark and its checks, the run's
``config.yaml`` and ``meta.json`` (provenance, written before training starts, after every
experience and at the end; this module is its one writer), and its outcome
(:mod:`clstm.run.outcome`, which writes ``metrics.json``). The files are named in
:mod:`clstm.run.files`; every one is written atomically.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from clstm.config import ExperimentConfig, load_config, to_dict, to_yaml
from clstm.config.schema import check_threads
from clstm.data.cache import quiet as data_quiet
from clstm.errors import (  # noqa: F401 - RunExistsError is re-exported for callers
    ClstmError,
    ConfigError,
    DataError,
    Interrupted,
    OutputError,
    RunExistsError,
    RunFailed,
    interruption_cause,
)
from clstm.run import provenance
from clstm.run.checks import check_experiment
from clstm.run.files import (
    CHECKPOINT,
    CONFIG,
    META,
    METRICS,
    TRACEBACK,
    write_json_atomic,
    write_text_atomic,
)
from clstm.run.outcome import RunResult, load_run, result_of, write_result
from clstm.run.protocol import interruption, train_and_evaluate
from clstm.run.rundir import (
    MAX_COMPONENT,
    RunLock,
    check_not_locked,
    check_out,
    check_run_dir,
    describe_differences,
    holds_run,
    identity,
    identity_hash,
    parse_override,
    read_config_dict,
    read_json_file,
    recorded_status,
    run_dir_path,
    run_name_for,
    safe_component,
)


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
        # speed setting, see train_and_evaluate); the value it reports is then correctly zero.
        warnings.filterwarnings(
            "ignore", message="The value of the smallest subnormal", category=UserWarning
        )
        yield


#: statuses that end a run for good: ``--resume`` keeps them (a diverged run diverges again)
FINAL = ("completed", "diverged")


def run_name_of(cfg: ExperimentConfig, overrides: Sequence[str], run_name: str | None) -> str:
    """The run's folder name: ``run_name`` made safe, else the strategy + the overridden values."""
    from clstm.config.yamlio import load_yaml

    if run_name is not None:
        name = str(run_name).strip()
        if not name:
            raise ConfigError("run_name is empty; give a name or leave it out",
                              cli="--name is empty; give a name or leave it out")  # fmt: skip
        if len(name) > MAX_COMPONENT:
            text = (f"is {len(name)} characters long; a run name is a folder name of at most "
                    f"{MAX_COMPONENT}: choose a shorter one")  # fmt: skip
            raise ConfigError(f"run_name {text}", cli=f"--name {text}")
        return safe_component(name)
    changes = []
    for item in overrides:
        key, text = parse_override(item)
        try:
            value = load_yaml(text) if text else ""
        except Exception:  # noqa: BLE001 - apply_override already accepted it as plain text
            value = text
        changes.append((key, value))
    return run_name_for(cfg.strategy.name, changes)


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
    threads: int | None = None,
    cli: bool = False,
    chosen_by: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run one experiment and write its run directory; returns a :class:`RunResult`.

    :param config: a YAML path, a mapping or an :class:`ExperimentConfig`.
    :param benchmark: a :class:`clstm.data.sequences.SequenceBenchmark` (e.g. from
        :func:`clstm.benchmark_from_arrays`) or an Avalanche benchmark in clstm's padded format,
        used instead of building ``config.benchmark``. The run's ``config.yaml`` then records it
        as ``benchmark.name: python`` with a fingerprint of its data (``clstm run`` refuses to
        run that file: the data are not in it).
    :param overrides: ``"dotted.key=value"`` strings applied to the config; they also name the
        run (``naive_train.lr=0.01``), so runs of different configs never share a folder.
    :param seed: replaces ``config.seed``.
    :param out: root of the run directories.
    :param overwrite: replace an existing run directory (otherwise :class:`RunExistsError`).
    :param quiet: print no progress (the CLI prints progress unless ``--quiet``).
    :param plugins: extra Avalanche plugins appended to the strategy's.
    :param command: the command line to record in ``meta.json`` (default ``sys.argv``).
    :param run_name: the run directory's name under the experiment (default: the strategy's
        name followed by the overridden values); made into one safe folder name.
    :param resume: a completed (or diverged) run of the same config is returned as it is; an
        interrupted one continues from its last checkpoint (after its last completed experience);
        a run that left no checkpoint starts again. A run of a different config is an error.
    :param threads: torch's intra-op threads for this run (default: torch's own, all cores);
        recorded in ``meta.json`` as ``torch_threads``. One thread is often faster on a machine
        busy with other work.
    :param cli: word messages for the command line (``--overwrite``) instead of Python.
    :param chosen_by: what chose this run's setting (``clstm tune``'s selection), recorded in
        its ``meta.json`` as ``tune``.

    Raises :class:`ConfigError` before anything is written for a bad config, a missing file, an
    existing run, a run of another config under the same name, or a run directory that another
    process is writing (:class:`RunLockedError`); :class:`RunFailed` after writing the run
    directory if training raised; :class:`OutputError` when results cannot be written or read
    (disk full, corrupt files), leaving what is on disk in place. A run whose loss becomes
    NaN/inf returns with ``status == "diverged"``.
    """
    if overwrite and resume:
        raise ConfigError(
            "give either overwrite=True or resume=True, not both",
            cli="give either --overwrite or --resume, not both",
        )
    out = check_out(out, cli=cli)
    check_threads(threads, cli=cli)
    overrides = list(overrides)
    cfg = load_config(config, overrides)
    if seed is not None:
        cfg = load_config(cfg, [f"seed={seed}"])
    bench = None
    if benchmark is not None:
        bench = _adopt_benchmark(benchmark)
        cfg = _with_python_benchmark(cfg, bench)
    name = run_name_of(cfg, overrides, run_name)
    run_dir = run_dir_path(out, cfg.name, name, cfg.seed)
    cfg_dict = to_dict(cfg)
    if plan_run(run_dir, cfg_dict, overwrite, resume, cli) == "done":  # early: nothing to build
        return load_run(run_dir)
    provenance.prefetch()  # while the benchmark is built
    with quiet_library_warnings():
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        device = resolve_device(cfg.device)
        if bench is None:
            try:
                with data_quiet() if quiet else contextlib.nullcontext():
                    bench = build_benchmark(cfg)
            except KeyboardInterrupt as exc:  # e.g. during a download: no run directory yet
                raise Interrupted(interruption_cause(exc), started=False) from None
        check_experiment(cfg, bench, device)
        if not cfg.eval.test and not bench.has_validation:
            raise ConfigError(
                "eval.test: false evaluates the validation stream only, and this benchmark has "
                "none: give it a validation split (validation= in benchmark_from_arrays)"
            )
        with RunLock(run_dir):  # one writer; the OS releases the lock if this process dies
            plan = plan_run(
                run_dir, cfg_dict, overwrite, resume, cli, locked=True
            )  # now it is ours
            if plan == "done":
                return load_run(run_dir)
            return _execute(
                cfg, bench, device, run_dir, name, plan, quiet, plugins, command, chosen_by
            )


def plan_run(
    run_dir: Path, cfg_dict: dict, overwrite: bool, resume: bool, cli: bool, locked: bool = False
) -> str:
    """What to do with the run directory: fresh, replace, restart, resume or done.

    Refuses (ConfigError) a run name whose other seeds were run with another config, an existing
    run unless ``overwrite``/``resume``, and resuming a run of another config; an unreadable run
    directory is reported (OutputError), never removed.
    """
    if not locked:  # (holding the lock ourselves, we would see it as taken)
        check_not_locked(run_dir)
    _check_siblings(run_dir, cfg_dict, cli)
    if not holds_run(run_dir):
        return "fresh"
    if overwrite:
        return "replace"
    check_run_dir(run_dir, overwrite, resume, cli=cli)
    try:
        status = recorded_status(run_dir, locked_by_us=locked)
        recorded = read_config_dict(run_dir) if (run_dir / CONFIG).exists() else None
    except OutputError as exc:
        flag = "--overwrite" if cli else "overwrite=True"
        raise OutputError(
            f"{exc}; the run directory is left as it is: move it away, or pass overwrite=True to "
            "replace it",
            cli=f"{exc}; the run directory is left as it is: move it away, or pass {flag} to "
            "replace it",
        ) from None
    if recorded is not None and recorded != cfg_dict:
        diff = describe_differences(recorded, cfg_dict)
        raise ConfigError(
            f"{run_dir} holds a run of a different config ({diff}; recorded vs now); resume it "
            "with its config.yaml, or pass overwrite=True to replace it",
            cli=f"{run_dir} holds a run of a different config ({diff}; recorded vs now); resume "
            "it with its config.yaml, or pass --overwrite to replace it",
        )
    if status in FINAL:
        return "done"
    if status is None and recorded is None:
        return "restart"  # a directory left before the run wrote anything
    if (run_dir / CHECKPOINT).exists():
        _check_checkpoint_file(run_dir / CHECKPOINT, cli)
        return "resume"
    return "restart"


def _check_checkpoint_file(path: Path, cli: bool) -> None:
    """A checkpoint is a zip archive (torch.save): a truncated one is reported before any change."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        bad = str(exc) or "not a zip archive"
    if bad is not None:
        flag = "--resume" if cli else "resume=True"
        raise OutputError(
            f"{path} is damaged ({bad}); the run directory is left as it is: remove the file to "
            f"restart this run with {flag}, or pass {'--overwrite' if cli else 'overwrite=True'}"
        )


def _check_siblings(run_dir: Path, cfg_dict: dict, cli: bool) -> None:
    """Seeds of one run name must be runs of one config (the identity: config minus seed)."""
    mine = identity(cfg_dict)
    parent = run_dir.parent
    if not parent.is_dir():
        return
    for other in sorted(parent.glob("seed*")):
        if other == run_dir or not (other / CONFIG).is_file():
            continue
        theirs = identity(read_config_dict(other))
        if theirs != mine:
            diff = describe_differences(theirs, mine)
            raise ConfigError(
                f"{parent} holds {other.name} of a different config ({diff}; there vs now); "
                "give this run its own name with run_name=..., or a different out",
                cli=f"{parent} holds {other.name} of a different config ({diff}; there vs now); "
                "give this run its own name with --name, or write elsewhere with --out",
            )


def _execute(
    cfg, bench, device, run_dir, name, plan, quiet, plugins, command, chosen_by=None
) -> RunResult:
    """Train and evaluate into ``run_dir`` (locked by the caller) and write every result file.

    Whatever happens, the directory ends with a final status (never ``running``): an error
    while writing (disk full, read-only) is recorded if possible and raised as OutputError.
    """
    elapsed = _WallClock()
    if plan in ("replace", "restart") and run_dir.exists():
        shutil.rmtree(run_dir)  # inside out/ (run_dir_path) and locked by this process
    resuming = plan == "resume"
    meta: dict = {}

    def save_meta() -> None:  # the one writer of meta.json
        write_json_atomic(run_dir / META, meta)

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if resuming:
            meta = read_json_file(run_dir / META)
            elapsed.earlier = _earlier_wall_time(meta)  # or the checkpoint's, once loaded
            process = provenance.this_process(device, command)
            changed = provenance.changes(meta, process)
            meta.setdefault("resumed", []).append(
                {"at": provenance.now(), "earlier_wall_time_s": round(elapsed.earlier, 3),
                 **({"changed": changed} if changed else {}), **process}
            )  # fmt: skip
            if changed:  # its numbers then come from two setups: say so even when quiet
                print(
                    f"clstm: note: resuming {run_dir} with another {', '.join(changed)} than it "
                    "started with (both recorded in its meta.json)",
                    file=sys.stderr,
                )
        else:
            meta = provenance.provenance(cfg, device, command, provenance.now())
            meta["run_name"] = name
            meta["identity"] = identity_hash(to_dict(cfg))
            meta["hparams"] = _hparams_of(cfg)
            meta["benchmark"] = bench.describe()
            if chosen_by is not None:
                meta["tune"] = dict(chosen_by)
            write_text_atomic(run_dir / CONFIG, to_yaml(cfg))
        meta.update(status="running", error=None, pid=os.getpid())
        save_meta()
        trained = train_and_evaluate(
            cfg, bench, device, run_dir, quiet=quiet, plugins=plugins, resuming=resuming,
            meta=meta, elapsed=elapsed, save_meta=save_meta,
        )  # fmt: skip
        status, error, failure = trained.status, trained.error, trained.failure
        if status == "completed" and cfg.checkpoint == "remove":
            (run_dir / CHECKPOINT).unlink(missing_ok=True)
        wall = elapsed()
        result = result_of(
            cfg, bench, run_dir=run_dir, run_name=name, status=status, error=error,
            matrices=trained.matrices, trained=len(trained.timings), wall=wall,
            continual=trained.continual, online=trained.online,
        )  # fmt: skip
        if failure is not None and status == "failed":
            write_text_atomic(run_dir / TRACEBACK, failure[1])
        write_result(result)
        meta.update(status=status, error=error, ended=provenance.now(), wall_time_s=round(wall, 3))
        meta["timings"] = trained.timings
        save_meta()
    except OSError as exc:  # disk full, read-only, removed under us: record it where possible
        _record_final(run_dir, meta, "failed", f"cannot write results: {_os_reason(exc)}", None)
        raise OutputError(
            f"cannot write the results of {run_dir}: {_os_reason(exc)}; free space or choose "
            "another out, then run again (what was written is left in place)",
            cli=f"cannot write the results of {run_dir}: {_os_reason(exc)}; free space or choose "
            "another --out, then run again (what was written is left in place)",
        ) from None
    except BaseException as exc:  # Ctrl-C/SIGTERM outside training, or a bug: never `running`
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        message = interruption(exc) if what == "interrupted" else f"{type(exc).__name__}: {exc}"
        unmeasured = result_of(
            cfg, bench, run_dir=run_dir, run_name=name, status=what, error=message,
            matrices=None, trained=len(meta.get("timings", [])), wall=elapsed(),
        )  # fmt: skip
        _record_final(run_dir, meta, what, message, unmeasured)
        if isinstance(exc, (KeyboardInterrupt, ClstmError)) or not isinstance(exc, Exception):
            raise
        with contextlib.suppress(OSError):
            write_text_atomic(run_dir / TRACEBACK, traceback.format_exc())
        raise RunFailed(f"{message} (traceback in {run_dir / TRACEBACK})") from exc
    if status == "completed":
        _update_tensorboard_view(run_dir)
    if status == "interrupted":
        raise failure[0]
    if failure is not None:
        raise RunFailed(f"{error} (traceback in {run_dir / TRACEBACK})") from failure[0]
    return result


def _hparams_of(cfg) -> dict:
    from clstm.run.logging import run_hparams

    return run_hparams(to_dict(cfg))


def _update_tensorboard_view(run_dir: Path) -> None:
    """Best effort: the experiment folder's HParams config and layout now include this run."""
    from clstm.run.logging import update_experiment_view

    try:
        update_experiment_view(run_dir.parent.parent)
    except Exception as exc:  # noqa: BLE001 - a view, never a reason to fail a finished run
        warnings.warn(f"could not update the TensorBoard view of {run_dir.parent.parent}: {exc}",
                      stacklevel=2)  # fmt: skip


def _os_reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{reason} ({exc.filename})" if exc.filename else reason


class _WallClock:
    """A run's wall time so far, over every process of a resumed run: ``earlier`` (seconds the
    processes before this one spent up to the checkpoint) plus this process's time."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.earlier = 0.0

    def __call__(self) -> float:
        return self.earlier + time.perf_counter() - self.started


def _earlier_wall_time(meta: dict) -> float:
    """The wall time a resumed run's earlier processes spent up to its checkpoint: the
    ``elapsed_s`` written with each experience's progress, or, in runs recorded before it, the
    sum of the experiences' training and evaluation times (setup not included)."""
    if isinstance(meta.get("elapsed_s"), (int, float)):
        return float(meta["elapsed_s"])
    timings = meta.get("timings") or []
    spent = sum(t.get("train_s", 0) + t.get("eval_s", 0) for t in timings if isinstance(t, dict))
    return spent + float(meta.get("initial_eval_s") or 0)


def _record_final(
    run_dir: Path, meta: dict, status: str, error: str, result: RunResult | None
) -> None:
    """Best effort after an interruption or error outside training: a final status on disk.

    ``meta.json`` gets the status; ``metrics.json`` is written from ``result`` (no rows
    measured) unless there is none or the run already wrote its own. Failures to write are
    ignored: the disk may be full, and a ``running`` status that no process holds is read as
    ``interrupted``.
    """
    if not meta or not run_dir.is_dir() or meta.get("status") not in (None, "running"):
        return
    try:
        write_json_atomic(run_dir / META, {**meta, "status": status, "error": error,
                                           "ended": provenance.now()})  # fmt: skip
        if result is not None and not (run_dir / METRICS).exists():
            write_result(result, matrices=False)
    except (OSError, ValueError):
        pass


def _with_python_benchmark(cfg: ExperimentConfig, bench) -> ExperimentConfig:
    """``cfg`` with its benchmark section describing the benchmark passed from Python.

    The recorded section (``name: python``) holds the scenario, the experience names and a
    SHA-256 fingerprint of every sample, so the run's identity changes with the data; building it
    from a config is refused (see :mod:`clstm.data.python_benchmark`).
    """
    from clstm.data.python_benchmark import describe

    raw = to_dict(cfg)
    raw["benchmark"] = describe(bench)
    return load_config(raw)


def build_benchmark(cfg: ExperimentConfig):
    """The benchmark of ``cfg`` (its ``experiences`` kept), a one-line ConfigError for a fault."""
    import inspect

    from clstm.data.registry import benchmark_module

    build = benchmark_module(cfg.benchmark.name).build
    # benchmarks whose stream depends on the run (e.g. a class order shuffled per run, as in
    # TSCIL) take the run's seed; the others depend on their config alone
    extra = {"run_seed": cfg.seed} if "run_seed" in inspect.signature(build).parameters else {}
    keep = getattr(cfg.benchmark, "experiences", None)
    try:
        bench = build(cfg.benchmark, **extra)
        if keep is not None:
            from clstm.data.subset import select_experiences

            bench = select_experiences(bench, keep)
        return bench
    except DataError as exc:
        raise ConfigError(f"benchmark '{cfg.benchmark.name}': {exc}") from None
    except MemoryError:
        raise ConfigError(
            f"benchmark '{cfg.benchmark.name}': not enough memory to build it with these sizes; "
            "make it smaller (fewer or shorter sequences, fewer features)"
        ) from None


def _adopt_benchmark(benchmark):
    from clstm.data.sequences import as_sequence_benchmark

    try:
        return as_sequence_benchmark(benchmark)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
