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
Sweeps of different runs (e.g. one job per seed on a cluster) may share an experiment folder and
its ``sweep.json`` (:class:`_SharedSummary`).

The sweep's main process owns its workers: Ctrl-C or SIGTERM stops them (each records what it
measured as ``interrupted``, resumable with ``--resume``), runs that never started are marked
``interrupted`` in ``sweep.json``, and :class:`clstm.errors.Interrupted` is raised; a worker whose
main process disappears (``kill -9``) stops its run the same way within a second or two.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clstm.config import (
    ExperimentConfig,
    apply_override,
    build,
)
from clstm.config.schema import check_threads
from clstm.errors import ClstmError, ConfigError, Interrupted, RunLockedError, interruption_cause
from clstm.run import stopping
from clstm.run.files import SWEEP, write_json_atomic
from clstm.run.grid import (
    MAX_RUNS,
    RunSpec,
    check_grid,
    deep_copy,
    expand,
)
from clstm.run.rundir import RunLock, check_out, is_locked, lock_path, run_dir_path


@dataclass
class SweepResult:
    """What a sweep produced: one summary dict per run (``status``, ``error``, metrics)."""

    summary_path: Path
    runs: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.runs if r["status"] != "completed"]


_WORKER = {"running": False, "stopping": False}


def run_one(
    raw: dict,
    spec: RunSpec,
    out: str,
    overwrite: bool,
    threads: int,
    resume: bool = False,
    cli: bool = False,
    plugins: Sequence[Any] = (),
) -> dict:
    """Run one sweep point (in a worker process or in-process); returns its summary row.

    Never raises for a failing run (its row says ``failed`` with the error); an interruption
    (Ctrl-C, SIGTERM, the sweep's main process gone) gives a row with status ``interrupted``.
    """
    summary = {
        "run_name": spec.run_name, "seed": spec.seed, "overrides": list(spec.overrides),
        "identity": spec.identity,
    }  # fmt: skip
    _WORKER["running"] = True
    started = time.perf_counter()
    try:
        if _WORKER["stopping"] or stopping.requested():
            raise Interrupted(stopping.requested() or "the sweep stopping")
        import torch

        torch.set_num_threads(threads)
        from clstm.run.runner import run_experiment

        try:
            result = run_experiment(
                raw, overrides=spec.overrides, seed=spec.seed, out=out, overwrite=overwrite,
                quiet=True, run_name=spec.run_name, resume=resume, cli=cli,
                chosen_by=spec.chosen_by, plugins=plugins,
            )  # fmt: skip
        except ClstmError as exc:
            return {**summary, "status": "failed", "error": exc.cli_message if cli else str(exc)}
        # its kind's summaries (accuracies, or errors); process_s: with the benchmark's build
        return {**summary, **result.row(), "process_s": round(time.perf_counter() - started, 3)}
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or the main process gone: recorded
        cause = interruption_cause(exc)
        return {**summary, "status": "interrupted", "error": f"interrupted by {cause}"}
    except Exception as exc:  # anything else: recorded, the sweep goes on
        return {**summary, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        _WORKER["running"] = False


def _init_worker(main_pid: int) -> None:
    """Set up a sweep worker: signals stop its run; it stops by itself if the sweep dies.

    SIGINT/SIGTERM request a stop (:mod:`clstm.run.stopping`): a running run stops at its next
    training or evaluation step and records ``interrupted``; an idle worker starts no new run and
    exits when the pool shuts down. A watchdog thread checks twice a second that the sweep's main
    process is alive; when it is gone (e.g. ``kill -9``) the run is stopped the same way and the
    worker exits at the latest 10 s later, so no orphan keeps writing into run directories that
    a ``--resume`` may take over.
    """

    def stop(signum, frame):
        _WORKER["stopping"] = True
        if stopping.requested() is None:  # a terminal's Ctrl-C and the sweep's both arrive
            stopping.request_stop(stopping.signal_name(signum))  # stops at the run's next step

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    parent = os.getppid()
    main_state = _process_state(main_pid)
    main_started = main_state[1] if main_state else None

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if _alive(main_pid, main_started) and os.getppid() == parent:
                continue
            _WORKER["stopping"] = True
            with contextlib.suppress(Interrupted):
                stopping.request_stop("the end of the sweep's main process")
            time.sleep(10)
            os._exit(1)

    threading.Thread(target=watchdog, name="clstm-sweep-watchdog", daemon=True).start()


def _process_state(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of a process from ``/proc`` (Linux), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], fields[19]  # state (R, S, Z, ...) and start time in clock ticks


def _alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` still runs: not gone, not a zombie, not a new process reusing it.

    A killed process whose parent does not reap it stays a zombie, which ``os.kill(pid, 0)``
    still reaches; ``/proc`` tells them apart where it exists.
    """
    state = _process_state(pid)
    if state is not None:
        return state[0] not in ("Z", "X") and (started is None or state[1] == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path("/proc/self").exists()  # /proc exists but lacks the pid: it is gone


def run_sweep(
    raw: Mapping[str, Any],
    *,
    seeds: Sequence[int] = (0,),
    grid: Mapping[str, list[Any]] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path = "results",
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    backend: str = "local",
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    allow_large: bool = False,
    threads: int | None = None,
    on_result: Callable[[dict, int, int], None] | None = None,
    cli: bool = False,
) -> SweepResult:
    """Run every grid combination x seed; returns the per-run summaries.

    ``overrides`` (``"dotted.key=value"``, like ``--set``) change the base config and enter the
    run names, as grid values do. ``workers > 1`` runs that many runs at once in separate
    processes, each with ``cpu_count // workers`` torch threads (no oversubscription). Every run
    is checked before anything starts: existing run directories are refused unless ``overwrite``
    (with ``resume`` completed runs are kept and interrupted ones continue from their
    checkpoints), and so are run names whose other seeds hold another config. Sweeps of
    different runs may write one experiment folder at once (:class:`_SharedSummary`); a sweep
    listing a run that another running sweep has still to do is refused at once.

    ``backend="ray"`` submits every run as a Ray task needing ``cpus_per_run`` CPUs and
    ``gpus_per_run`` GPUs, on the cluster at ``address`` (``"auto"``: the one this machine
    belongs to) or on a local Ray instance started for the sweep; ``out`` must then be on a file
    system all nodes see.

    Ctrl-C or SIGTERM (delivered as :class:`clstm.errors.Interrupted`) stops the workers; what
    they measured is recorded as ``interrupted`` and the exception is raised again.
    """
    _check_backend(workers, backend, cli)
    out = check_out(out, cli=cli)
    grid = dict(grid or {})
    specs, experiment = _planned(raw, seeds, grid, overrides, out, overwrite, resume,
                                 allow_large, cli)  # fmt: skip
    return run_specs(
        raw, specs, experiment, out=out, workers=workers, overwrite=overwrite, resume=resume,
        backend=backend, address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
        threads=threads, on_result=on_result, cli=cli,
    )  # fmt: skip


def run_specs(
    raw: Mapping[str, Any],
    specs: Sequence[RunSpec],
    experiment: str,
    *,
    out: Path,
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = False,
    backend: str = "local",
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    threads: int | None = None,
    on_result: Callable[[dict, int, int], None] | None = None,
    cli: bool = False,
) -> SweepResult:
    """Run ``specs`` (checked by :func:`plan_specs`) into ``out/experiment``, as a sweep does
    (workers, Ray, ``sweep.json``, interruptions): what :func:`run_sweep` and ``clstm tune``
    run their runs with."""
    ray = _check_backend(workers, backend, cli)
    summary_path = out / experiment / SWEEP
    check_threads(threads, cli=cli)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    rows: dict[tuple[str, int], dict] = {
        (s.run_name, s.seed): {
            "run_name": s.run_name, "seed": s.seed, "identity": s.identity, "status": "pending",
        }
        for s in specs
    }  # fmt: skip

    summary = _SharedSummary(out / experiment, experiment, workers, rows)

    def record(row: dict) -> None:
        rows[(row["run_name"], row["seed"])] = row
        summary.write()
        if on_result is not None:
            done = sum(r["status"] not in ("pending", "running") for r in rows.values())
            on_result(row, done, len(rows))

    ray_started = False
    if backend == "ray":  # checked before anything is written
        ray_started = start_ray(ray, address)
        try:
            _check_ray_resources(ray, cpus_per_run, gpus_per_run, cli)
        except ConfigError:
            if ray_started:
                ray.shutdown()
            raise
    try:
        with summary:  # refuses runs another living sweep still has to do; writes sweep.json
            payload = deep_copy(raw)
            try:
                if backend == "ray":
                    _run_on_ray(
                        ray, payload, specs, str(out.resolve()), overwrite, resume, record,
                        cpus_per_run, gpus_per_run, cli,
                    )  # fmt: skip
                elif workers == 1:
                    _run_in_process(payload, specs, str(out), overwrite, threads, resume, cli,
                                    record)  # fmt: skip
                else:
                    _run_on_workers(payload, specs, str(out), overwrite, threads, resume, cli,
                                    workers, record)  # fmt: skip
            except KeyboardInterrupt as exc:
                cause = interruption_cause(exc)
                for key, row in rows.items():
                    if row["status"] in ("pending", "running"):
                        error = f"interrupted by {cause} before it finished"
                        rows[key] = {**row, "status": "interrupted", "error": error}
                summary.write()
                raise Interrupted(cause) from None
    finally:
        if ray_started:
            ray.shutdown()
    return SweepResult(summary_path=summary_path, runs=list(rows.values()))


def _flag(cli: bool):
    """How a fix is worded for the caller: the command-line flag, or the Python argument."""
    return (lambda c, p: c) if cli else (lambda c, p: p)


def _check_backend(workers: int, backend: str, cli: bool):
    """Refuse bad ``workers`` and ``backend``; the ``ray`` module for ``backend="ray"``."""
    flag = _flag(cli)
    if workers < 1:
        raise ConfigError(f"{flag('--workers', 'workers')} must be >= 1, got {workers}")
    if backend not in ("local", "ray"):
        raise ConfigError(f"{flag('--backend', 'backend')} must be local or ray, got '{backend}'")
    if backend != "ray":
        return None
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"{flag('--backend ray', 'backend=ray')} needs the ray package: "
            "pip install 'clstm[ray]'"
        ) from None
    return ray


def _planned(raw, seeds, grid, overrides, out, overwrite, resume, allow_large, cli):
    """``(specs, experiment name)``: every run of the sweep, validated, with every run
    directory checked before any run starts (ConfigError otherwise)."""
    check_grid(grid)
    combinations = 1
    for values in grid.values():
        combinations *= len(values)
    total = combinations * len(seeds)
    if total > MAX_RUNS and not allow_large:
        raise ConfigError(
            f"this sweep has {total:,} runs (more than {MAX_RUNS:,}); pass "
            f"{_flag(cli)('--allow-large-sweep', 'allow_large=True')} if you mean it"
        )
    specs = expand(raw, seeds, grid, overrides)
    base_raw = deep_copy(raw)
    for item in overrides:
        apply_override(base_raw, item)
    base = build(ExperimentConfig, base_raw)
    plan_specs(specs, out, base.name, overwrite, resume, cli)
    return specs, base.name


def plan_specs(specs, out: Path, experiment: str, overwrite: bool, resume: bool, cli: bool) -> None:
    """Check every run directory before any run starts (ConfigError otherwise)."""
    from clstm.run.runner import plan_run

    for spec in specs:
        run_dir = run_dir_path(out, experiment, spec.run_name, spec.seed)
        plan_run(run_dir, spec.config, overwrite, resume, cli)


def _run_in_process(payload, specs, out, overwrite, threads, resume, cli, record) -> None:
    """Run the specs one after another in this process; an interrupted run stops the sweep."""
    for spec in specs:
        row = run_one(payload, spec, out, overwrite, threads, resume, cli)
        record(row)
        if row["status"] == "interrupted":
            raise Interrupted(row["error"].removeprefix("interrupted by "))


class _SharedSummary:
    """``<out>/<experiment>/sweep.json``, shared by the sweeps writing one experiment folder.

    Sweeps of different runs may write one experiment folder at the same time (a SLURM array
    with one job per seed and one ``--out``). Each sweep holds an owner lock
    (``.sweep-<token>.lock``) while it runs; its rows say ``"sweep": "<host>:<pid>:<token>"``.
    Every rewrite of ``sweep.json`` reads, merges and writes it under the folder's
    ``.sweep.lock``, held only for that moment: this sweep's rows replace its own, the other
    sweeps' rows stay, and a row that a sweep left ``pending`` or ``running`` becomes
    ``interrupted`` once that sweep is gone (killed: nobody else would update it). Entering
    refuses (:class:`RunLockedError`) a sweep that lists a run which another living sweep has
    still to do; a run another process is running now was refused already (its run lock).
    """

    OPEN = ("pending", "running")

    def __init__(self, folder: Path, experiment: str, workers: int, rows: dict):
        import secrets
        import socket

        self.folder, self.experiment, self.workers, self.rows = folder, experiment, workers, rows
        token = secrets.token_hex(6)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{token}"
        self.owner = RunLock(folder / f"sweep-{token}")
        self.path = folder / SWEEP

    def __enter__(self) -> _SharedSummary:
        self.owner.acquire()
        try:
            with RunLock(self.folder / "sweep", wait=60):
                listed = self._listed()
                for row in listed:  # open rows of other sweeps are of living ones here
                    key = (row.get("run_name"), row.get("seed"))
                    if key in self.rows and row.get("status") in self.OPEN:
                        host, pid, _ = str(row.get("sweep")).rsplit(":", 2)
                        text = (
                            f"{self.folder / str(key[0]) / f'seed{key[1]}'} is still to be run "
                            f"by another clstm sweep (pid {pid} on {host}); leave it out of "
                        )
                        raise RunLockedError(
                            text + "this sweep, wait for that one to finish, or write "
                            "elsewhere with a different out",
                            cli=text + "--seeds/--grid, wait for that sweep to finish, or "
                            "write elsewhere with --out",
                        )
                self._write(listed)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def write(self) -> None:
        with RunLock(self.folder / "sweep", wait=60):
            self._write(self._listed())

    def _close(self) -> None:
        self.owner.path.unlink(missing_ok=True)  # before releasing: nobody waits on this file
        self.owner.release()

    def _listed(self) -> list[dict]:
        """The rows in ``sweep.json``, in order (an unreadable file holds none)."""
        try:
            runs = json.loads(self.path.read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        rows = [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []
        alive = {}
        for sweep in {str(r.get("sweep")) for r in rows} - {self.id}:
            token = sweep.rsplit(":", 2)[-1]
            known = sweep.count(":") >= 2 and token.isalnum()  # else: no owner lock to ask
            owner = self.folder / f"sweep-{token}"
            alive[sweep] = known and is_locked(owner)
            if known and not alive[sweep]:
                lock_path(owner).unlink(missing_ok=True)  # left behind by a killed sweep
        listed = []
        for row in rows:  # ours stay as placeholders: _write puts them as they are now
            sweep = str(row.get("sweep"))
            if sweep != self.id and row.get("status") in self.OPEN and not alive[sweep]:
                row = {**row, "status": "interrupted",
                       "error": "its sweep ended before the run finished"}  # fmt: skip
            listed.append(row)
        return listed

    def _write(self, listed: list[dict]) -> None:
        mine = {key: {**row, "sweep": self.id} for key, row in self.rows.items()}
        merged = []
        for row in listed:  # rows keep their places; ours replace their earlier versions
            merged.append(mine.pop((row.get("run_name"), row.get("seed")), None) or row)
        merged.extend(mine.values())
        write_json_atomic(
            self.path, {"experiment": self.experiment, "workers": self.workers, "runs": merged}
        )


def _run_on_workers(payload, specs, out, overwrite, threads, resume, cli, workers, record) -> None:
    """Run the specs on a pool of worker processes; on Ctrl-C/SIGTERM stop them promptly.

    While the pool runs, SIGINT and SIGTERM only set a flag that the loop checks twice a second
    (an exception raised asynchronously inside the pool's bookkeeping could leave its locks
    held and hang the sweep). Stopping: queued runs are cancelled, the signal is passed on to
    every worker (a worker running a run records it as interrupted; an idle one ignores it),
    their rows are collected for up to 30 s, workers still alive then are killed, and
    :class:`Interrupted` is raised.
    """
    stop: dict[str, str | None] = {"cause": None}

    def on_signal(signum, frame) -> None:
        stop["cause"] = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name

    in_main = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        if in_main
        else {}
    )
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=_worker_context(), initializer=_init_worker,
        initargs=(os.getpid(),),
    )  # fmt: skip
    try:
        futures = {
            pool.submit(run_one, payload, s, out, overwrite, threads, resume, cli): s for s in specs
        }
        pending = set(futures)
        while pending and stop["cause"] is None:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                record(_row_of(future, futures[future]))
        if stop["cause"] is None:
            pool.shutdown(wait=True)
            return
        for future in pending:
            future.cancel()
        forwarded = signal.SIGTERM if stop["cause"] == "SIGTERM" else signal.SIGINT
        processes = dict(getattr(pool, "_processes", None) or {})
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, forwarded)
        done, _ = wait({f for f in pending if not f.cancelled()}, timeout=30)
        for future in done:
            record(_row_of(future, futures[future]))
        for pid, process in processes.items():  # a worker that did not stop in time
            if process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)
        raise Interrupted(stop["cause"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _row_of(future, spec: RunSpec) -> dict:
    """A finished future's row; a worker that died (killed, out of memory) gives a failed row."""
    try:
        return future.result()
    except BaseException as exc:  # noqa: BLE001 - BrokenProcessPool and the like
        return {
            "run_name": spec.run_name, "seed": spec.seed, "overrides": list(spec.overrides),
            "identity": spec.identity, "status": "failed",
            "error": f"the worker process ended abnormally ({type(exc).__name__}: {exc})",
        }  # fmt: skip


def _worker_context():
    """Start workers from a fork server that has imported torch and Avalanche once.

    Spawned workers each import torch + Avalanche (~5 s, competing for the same cores); forked
    ones inherit them. Forking the sweep's own process is unsafe once it has run torch ops
    (OpenMP thread pools, CUDA), so workers are forked from a fresh ``forkserver`` process that
    only imports (``clstm.run._worker_preload``). ``spawn`` where there is no fork server (Windows).
    The fork server exits when the sweep's process does.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["clstm.run._worker_preload"])
    return context


def start_ray(ray, address: str | None) -> bool:
    """Connect to (or start) Ray; True if this call started it (and so must stop it)."""
    import logging

    if ray.is_initialized():
        return False
    options = {"address": address} if address else {"num_cpus": os.cpu_count()}
    ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return True


def _check_ray_resources(ray, cpus: float, gpus: float, cli: bool) -> None:
    """Refuse CPUs/GPUs per run that the whole cluster lacks (Ray would wait forever)."""
    resources = ray.cluster_resources()
    for what, need, flag in (("GPU", gpus, "gpus_per_run"), ("CPU", cpus, "cpus_per_run")):
        have = resources.get(what, 0)
        if need > have:
            name = "--" + flag.replace("_", "-") if cli else flag
            raise ConfigError(
                f"{name} {need:g}: the Ray cluster has {have:g} {what}(s) in all, so no run "
                f"could ever start; ask for at most {have:g}"
            )


def _run_on_ray(ray, payload, specs, out, overwrite, resume, record, cpus, gpus, cli) -> None:
    """Submit every run as a Ray task; record results as they finish."""
    task = ray.remote(num_cpus=cpus, num_gpus=gpus)(run_one)
    threads = max(1, int(cpus))
    pending = [task.remote(payload, s, out, overwrite, threads, resume, cli) for s in specs]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            record(ray.get(done[0]))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)
        raise
