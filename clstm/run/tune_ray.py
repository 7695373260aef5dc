"""``clstm tune --engine ray``: the trials as Ray Tune trials (ASHA when asked).

One Ray Tune trial per trial point (``param_space = {"trial": grid_search(range(n))}``: the points
are :meth:`clstm.run.tunespec.TuneSpec.trials`'s, so both engines run the same ones); inside it,
the point's seeds run in turn as ordinary clstm runs (:func:`clstm.run.sweep.run_one`), which
write the run directories the selection reads. With ``scheduler: asha``, :class:`ReportPlugin`
reports after every experience the validation score on the experiences seen so far (ACC, or the
mean error), and ASHA stops trials in the lower half of their rung; their runs end
``interrupted`` and the trials are recorded as stopped (``stopped.json``), not run again on
resume. Ray Tune's own files go to ``<tune folder>/ray``; Ray connects to ``RAY_ADDRESS`` when it
is set, else starts a local instance for the tune.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from avalanche.core import SupervisedPlugin

from clstm.errors import ConfigError, Interrupted
from clstm.run.files import write_json_atomic
from clstm.run.rundir import read_json_file, recorded_status, run_dir_path

STOPPED = "stopped.json"  # trials ASHA stopped (not resumed)
STOP_CAUSE = "ASHA (a weak trial, stopped early)"
ASHA = {"grace_period": 1, "reduction_factor": 2}  # in experiences trained (reports)


class ReportPlugin(SupervisedPlugin):
    """After each evaluation that follows training, report the trial's validation score so far
    (``signal``) to Ray Tune."""

    def __init__(self, measure: str):
        super().__init__()
        self.measure = measure

    def after_eval(self, strategy, *args, **kwargs):
        trained = strategy.clock.train_exp_counter
        if trained == 0:
            return  # the untrained model's row
        matrices = {
            m.stream: m for m in strategy.evaluator.metrics
            if getattr(m, "measure", None) == self.measure and m.measured
        }  # fmt: skip
        metric = matrices.get("valid") or matrices.get("test")
        if metric is None:
            return
        _, R = metric.result()
        row = np.asarray(R)[min(trained, len(R)) - 1][:trained]
        seen = row[np.isfinite(row)]
        if len(seen):
            from ray import tune

            try:
                tune.report({"signal": float(seen.mean()), "experiences": int(trained)})
            except SystemExit:  # how Ray Tune stops a function trial: recorded as interrupted
                raise Interrupted(STOP_CAUSE) from None


def run_trials(plan, tune_dir: Path, resume: bool, threads, report, cli: bool) -> list[dict]:
    """Run the plan's trials with Ray Tune; their rows (as a sweep's)."""
    import ray
    from ray import tune

    from clstm.run.sweep import start_ray

    tune_dir = Path(tune_dir).resolve()
    stopped_path = tune_dir / STOPPED
    stopped = set(read_json_file(stopped_path)) if resume and stopped_path.exists() else set()
    by_trial: dict[str, list] = {}
    for spec in plan.specs:
        by_trial.setdefault(spec.run_name, []).append(spec)
    names = [n for n in by_trial if n not in stopped]
    measure = _measure(plan)
    payload, out, cpus = plan.raw, str(tune_dir), max(1, threads or 1)
    asha = plan.spec.scheduler == "asha"

    def trainable(config):
        from clstm.run.sweep import run_one

        for spec in by_trial[names[config["trial"]]]:
            plugins = [ReportPlugin(measure)] if asha else []
            row = run_one(payload, spec, out, False, cpus, resume, cli, plugins=plugins)
            if STOP_CAUSE in str(row.get("error")):
                return  # ASHA stopped it: its later seeds do not run
            if row["status"] != "completed":
                raise RuntimeError(f"{spec.run_name} seed {spec.seed}: {row.get('error')}")

    started = start_ray(ray, os.environ.get("RAY_ADDRESS"))
    try:
        if not ray.cluster_resources().get("CPU", 0) >= cpus:
            raise ConfigError(f"the Ray cluster has fewer than the {cpus} CPU(s) a trial needs")
        scheduler = None
        if asha:
            from ray.tune.schedulers import ASHAScheduler

            higher = plan.higher if plan.metric in ("acc", "mse_final", "mae_final") else True
            scheduler = ASHAScheduler(
                time_attr="training_iteration", metric="signal",
                mode="max" if higher else "min", max_t=10**6, **ASHA,
            )  # fmt: skip
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus}),
            param_space={"trial": tune.grid_search(list(range(len(names))))},
            tune_config=tune.TuneConfig(scheduler=scheduler),
            run_config=tune.RunConfig(
                name="search",
                storage_path=str(tune_dir / "ray"),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
            ),  # fmt: skip
        )
        grid = tuner.fit()
        ended = {names[r.config["trial"]]: r for r in grid if r.config is not None}
    finally:
        if started:
            ray.shutdown()
    rows = []
    for name, specs in by_trial.items():
        result = ended.get(name)
        for spec in specs:
            rows.append(_row(plan, tune_dir, spec, name in stopped, result, asha))
            report(rows[-1], len(rows), len(plan.specs))
    now_stopped = sorted({r["run_name"] for r in rows if r["status"] == "stopped"})
    write_json_atomic(stopped_path, now_stopped)
    return rows


def _measure(plan) -> str:
    from clstm.metrics import MEASURES

    for name, m in MEASURES.items():
        if m.final == plan.metric:
            return name
    return "accuracy" if plan.higher else "mse"


def _row(plan, tune_dir: Path, spec, was_stopped: bool, result, asha: bool) -> dict:
    run_dir = run_dir_path(tune_dir, plan.base.name, spec.run_name, spec.seed)
    status = recorded_status(run_dir) if run_dir.exists() else None
    row = {"run_name": spec.run_name, "seed": spec.seed, "identity": spec.identity,
           "run_dir": str(run_dir)}  # fmt: skip
    if status == "completed":
        metrics = json.loads((run_dir / "metrics.json").read_text())
        wall = metrics.get("wall_time_s")
        return {**row, "status": "completed", "error": None,
                "process_s": wall if isinstance(wall, (int, float)) and math.isfinite(wall)
                else None}  # fmt: skip
    error = getattr(result, "error", None) if result is not None else None
    if was_stopped or (asha and error is None):
        return {**row, "status": "stopped", "error": "stopped early by ASHA"}
    return {**row, "status": status or "failed", "error": str(error) if error else status}
