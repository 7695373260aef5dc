"""``clstm tune``: hyperparameters chosen on validation data, then the final seeds.

A tune of experiment ``NAME`` into ``OUT`` (its section: :mod:`clstm.run.tunespec`)::

    OUT/NAME/tune/tune.json                  the section and the trials (a resume must match)
    OUT/NAME/tune/NAME/trialNNN/seedK/       every trial, an ordinary run directory
    OUT/NAME/tune/selection.json             the trials' scores and the setting chosen
    OUT/NAME/final/NAME/<run name>/seedK/    the chosen setting, one run per final seed

**What trials read.** ``selection: split``: each trial trains on every experience's training
split and is scored on its validation split (``benchmark.validation``); it runs with
``eval.test: false``, so the test stream is never evaluated (nor logged). ``selection:
experiences``: trials run on the first ``validation_experiences`` experiences only
(``benchmark.experiences``), scored on their validation split when the benchmark has one, else on
their test split - data of tasks the final runs never see - and the final runs on the others,
renumbered from 0. Streams whose order depends on the run's seed (TSCIL's shuffled class order)
are refused there: one seed's validation tasks would be another's final tasks.

**Selection.** A trial's score is the mean of ``metric`` over its seeds (the validation stream's
summary, :data:`clstm.metrics.METRICS`; higher or lower is better as the catalogue says); only
trials whose every seed completed are ranked. The best score wins; a tie (equal to 12 significant
digits) goes to the earlier trial in the order of :meth:`TuneSpec.trials` (the space's order, the
grid's first values first). The final runs are ordinary runs (identity, locks, ``--resume``),
named by the strategy and the chosen values, each recording the selection in ``meta.json``.

**Engines.** ``local``: the trials are a sweep (:func:`clstm.run.sweep.run_specs`): in this
process, or on ``workers`` processes forked from one that imported torch once. ``ray``: Ray Tune
(on the cluster at ``RAY_ADDRESS`` when set, else a local Ray), one Ray Tune trial per trial point,
its seeds in turn; ``scheduler: asha`` stops trials whose validation score on the experiences seen
so far is in the lower half of their rung (ASHA, grace period 1 experience, reduction factor 2).
Both engines run the same trial points, so without a scheduler they select the same setting.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clstm.config import ExperimentConfig, apply_override, build, to_dict
from clstm.config.loading import name_from_file
from clstm.config.yamlio import read_yaml
from clstm.errors import ConfigError, OutputError
from clstm.metrics import MEASURES, METRICS
from clstm.run.files import SELECTION, SWEEP, TUNE, write_json_atomic
from clstm.run.grid import RunSpec, deep_copy, yaml_text
from clstm.run.rundir import (
    check_out,
    describe_differences,
    identity_hash,
    read_json_file,
    run_dir_path,
    run_name_for,
)
from clstm.run.tunespec import TuneSpec, check_against, parse_tune

TIE_DIGITS = 12  # scores equal to this many significant digits tie


@dataclass
class TuneResult:
    """What a tune produced: its selection (``selection.json``) and the final runs."""

    folder: Path  # OUT/NAME
    selection: dict
    final: list = field(default_factory=list)  # RunResult of every completed final seed
    failed: list[dict] = field(default_factory=list)  # rows of trials or final runs that failed

    @property
    def best(self) -> dict:
        return self.selection["best"]


@dataclass
class _Plan:
    """Everything a tune does, decided and checked before anything runs."""

    raw: dict
    spec: TuneSpec
    base: ExperimentConfig
    metric: str
    higher: bool
    search: list[int] | None  # experiences of the search (selection: experiences)
    final: list[int] | None  # experiences of the final runs
    trials: list[dict] = field(default_factory=list)
    specs: list[RunSpec] = field(default_factory=list)


def read_tune_file(path: str | Path) -> tuple[dict, dict]:
    """``(config without its tune section, tune section)`` from an experiment YAML."""
    raw = read_yaml(Path(path))
    name_from_file(raw, Path(path))
    if "sweep" in raw:
        raise ConfigError(f"{path} has a sweep: section and a tune: section; a tune runs its own "
                          "trials: remove the sweep section")  # fmt: skip
    if "tune" not in raw:
        raise ConfigError(f"{path} has no tune: section; add one (docs/tuning.md) or run it with "
                          "clstm run")  # fmt: skip
    return raw, raw.pop("tune")


def tune(
    config: str | Path | Mapping[str, Any],
    *,
    out: str | Path = "results",
    engine: str = "local",
    workers: int = 1,
    resume: bool = False,
    threads: int | None = None,
    benchmark=None,
    section: Mapping[str, Any] | None = None,
    on_result: Callable[[str, dict, int, int], None] | None = None,
    cli: bool = False,
) -> TuneResult:
    """Search ``config``'s ``tune:`` section on validation data, then run the best setting with
    the final seeds; returns a :class:`TuneResult` (module docstring: the protocol, the files).

    :param config: an experiment YAML path or mapping with a ``tune`` section (or give
        ``section``).
    :param benchmark: your own :class:`clstm.data.sequences.SequenceBenchmark` (e.g. from
        :func:`clstm.benchmark_from_arrays`, with ``validation=`` for ``selection: split``),
        used instead of ``config``'s benchmark; trials then run in this process.
    :param engine: ``local`` or ``ray``; ``workers``: trials at once (local engine).
    :param resume: continue an interrupted tune: finished trials and final runs are kept,
        interrupted ones continue from their checkpoints; a changed section is refused.
    :param on_result: called with ``(stage, row, done, total)`` as each run finishes (``stage``:
        ``search`` or ``final``).

    Every fault of the section or the experiment is a :class:`ConfigError` before anything runs.
    """
    started = time.perf_counter()
    raw, section = _split_config(config, section)
    out = check_out(out, cli=cli)
    plan = _plan(raw, parse_tune(section), benchmark, engine, workers, cli)
    folder = out / plan.base.name
    tune_dir = folder / "tune"
    _claim(tune_dir, plan, resume, cli)
    checked = time.perf_counter()
    rows = _search(plan, tune_dir, engine, workers, resume, threads, benchmark, on_result, cli)
    searched = time.perf_counter()
    selection = _select(plan, tune_dir, rows)
    selection["timing"] = {
        "checks_s": round(checked - started, 3), "search_wall_s": round(searched - checked, 3),
        "trials_s": round(sum(r.get("process_s") or 0 for r in rows), 3), "workers": workers,
        "engine": engine,
    }  # fmt: skip
    write_json_atomic(tune_dir / SELECTION, selection)
    final_rows, results = _final(plan, folder, selection, workers, resume, threads, benchmark,
                                 on_result, cli)  # fmt: skip
    selection["timing"]["final_wall_s"] = round(time.perf_counter() - searched, 3)
    write_json_atomic(tune_dir / SELECTION, selection)
    # trials ASHA stopped are the scheduler's choice, not failures
    failed = [r for r in [*rows, *final_rows] if r.get("status") not in ("completed", "stopped")]
    return TuneResult(folder, selection, results, failed)


def _split_config(config, section) -> tuple[dict, dict]:
    if isinstance(config, (str, Path)):
        raw, found = read_tune_file(config) if section is None else (read_yaml(Path(config)), None)
        if section is None:
            section = found
        else:
            name_from_file(raw, Path(config))
            raw.pop("tune", None)
    elif isinstance(config, Mapping):
        raw = deep_copy(config)
        found = raw.pop("tune", None)
        section = section if section is not None else found
    else:
        raise ConfigError(f"config must be a YAML path or a dict, not {type(config).__name__}")
    if section is None:
        raise ConfigError("the config has no tune section; add one or pass section=")
    if "sweep" in raw:
        raise ConfigError("a tune runs its own trials: remove the config's sweep section")
    return raw, section


def _plan(raw, spec: TuneSpec, benchmark, engine, workers, cli) -> _Plan:
    """Check the section against the experiment and its stream; decide the trials."""
    flag = (lambda c, p: c) if cli else (lambda c, p: p)
    if engine not in ("local", "ray"):
        raise ConfigError(f"{flag('--engine', 'engine')} must be local or ray, got '{engine}'")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"{flag('--workers', 'workers')} must be >= 1, got {workers}")
    if spec.scheduler == "asha" and engine != "ray":
        raise ConfigError(
            "tune.scheduler: asha stops weak trials between experiences, which needs "
            f"{flag('--engine ray', 'engine=ray')} (the local engine runs every trial to its end)"
        )
    if benchmark is not None and (engine != "local" or workers != 1):
        raise ConfigError("a benchmark passed from Python is tuned in this process: use "
                          "engine='local' and workers=1")  # fmt: skip
    if engine == "ray":
        try:
            import ray.tune  # noqa: F401
        except ImportError:
            raise ConfigError(f"{flag('--engine ray', 'engine=ray')} needs Ray Tune: pip install "
                              "'clstm[ray]'") from None  # fmt: skip
    if benchmark is not None:
        raw = {**raw, "benchmark": {"name": "python"}}
    base = check_against(spec, raw) if benchmark is None else _python_base(spec, raw)
    bench = _stream_of(base, benchmark)
    n = bench.n_experiences
    search = final = None
    if spec.selection == "experiences":
        k = spec.validation_experiences
        if k >= n:
            raise ConfigError(
                f"tune.validation_experiences: {k} leaves no experience for the final runs; the "
                f"stream has {n} (hold out at most {n - 1}, or lengthen the stream)"
            )
        if getattr(base.benchmark, "class_order", None) == "shuffled":
            raise ConfigError(
                f"tune.selection: experiences: benchmark '{base.benchmark.name}' shuffles its "
                "classes per run seed, so one seed's validation tasks are another's final tasks; "
                "set benchmark.class_order: preset"
            )
        search, final = list(range(k)), list(range(k, n))
    if spec.selection == "split" and not bench.has_validation:
        raise ConfigError("tune.selection: split needs a validation split: pass a benchmark "
                          "made with validation= (e.g. 0.2)")  # fmt: skip
    kind = bench.kind
    metric = spec.metric or MEASURES[kind.measures[0]].final
    if metric not in kind.summary_keys:
        raise ConfigError(
            f"tune.metric: {metric} is not recorded for {kind.description} targets; choose one "
            f"of {', '.join(kind.summary_keys)}"
        )
    if metric in ("fwt", "mse_forward_change") and not base.eval.initial:
        raise ConfigError(f"tune.metric: {metric} needs the untrained model's row: set "
                          "eval.initial: true")  # fmt: skip
    from clstm.strategies import STRATEGIES

    trains_once = STRATEGIES[base.strategy.name].trains_once
    if trains_once and metric != MEASURES[kind.measures[0]].final:
        raise ConfigError(f"tune.metric: {base.strategy.name} trains once and has only the final "
                          f"{MEASURES[kind.measures[0]].final}; tune on that")  # fmt: skip
    plan = _Plan(raw, spec, base, metric, METRICS[metric].higher_is_better, search, final)
    plan.trials = spec.trials()
    plan.specs = [
        _spec(raw, f"trial{i:03d}", seed, [*_overrides(values), *_scoring(plan, bench)])
        for i, values in enumerate(plan.trials)
        for seed in spec.seeds
    ]
    return plan


def _python_base(spec: TuneSpec, raw: dict) -> ExperimentConfig:
    """The base config of a tune of a benchmark passed from Python (its section unchecked)."""
    base = build(ExperimentConfig, deep_copy(raw))
    for key, values in spec.space.items():
        if key.startswith("benchmark."):
            raise ConfigError(f"tune.space: {key} cannot be tuned for a benchmark passed from "
                              "Python (its data are fixed)")  # fmt: skip
        for value in getattr(values, "args", values):
            trial = deep_copy(raw)
            apply_override(trial, f"{key}={yaml_text(value)}")
            build(ExperimentConfig, trial)
    return base


def _stream_of(base: ExperimentConfig, benchmark):
    """The whole stream (to count its experiences and know its target kind)."""
    if benchmark is not None:
        from clstm.data.sequences import as_sequence_benchmark

        return as_sequence_benchmark(benchmark)
    from clstm.run.runner import build_benchmark

    return build_benchmark(base)


def _overrides(values: Mapping[str, Any]) -> list[str]:
    return [f"{k}={yaml_text(v)}" for k, v in values.items()]


def _scoring(plan: _Plan, bench) -> list[str]:
    """What makes a trial read validation data only."""
    items = []
    if plan.search is not None:
        items.append(f"benchmark.experiences={yaml_text(plan.search)}")
    if plan.spec.selection == "split" or bench.has_validation:
        items.append("eval.test=false")
    return items


def _spec(raw: dict, run_name: str, seed: int, overrides: list[str], chosen_by=None) -> RunSpec:
    config = deep_copy(raw)
    for item in overrides:
        apply_override(config, item)
    resolved = to_dict(build(ExperimentConfig, config))
    return RunSpec(run_name, seed, tuple(overrides), identity_hash(resolved),
                   {**resolved, "seed": seed}, chosen_by)  # fmt: skip


def _claim(tune_dir: Path, plan: _Plan, resume: bool, cli: bool) -> None:
    """Write ``tune.json``, refusing a tune folder that holds another tune (or, without
    ``resume``, any tune)."""
    record = {"tune": plan.spec.describe(), "identity": identity_hash(to_dict(plan.base)),
              "trials": plan.trials}  # fmt: skip
    path = tune_dir / TUNE
    if path.exists():
        if not resume:
            raise ConfigError(
                f"{tune_dir} holds a tune already; pass resume=True to continue it, or another out",
                cli=f"{tune_dir} holds a tune already; pass --resume to continue it, or another "
                "--out",
            )
        held = read_json_file(path)
        if held.get("tune") != record["tune"] or held.get("identity") != record["identity"]:
            what = "tune: section" if held.get("tune") != record["tune"] else "experiment config"
            change = describe_differences(held.get("tune") or {}, record["tune"])
            raise ConfigError(
                f"{tune_dir} was tuned with another {what}"
                + (f" ({change})" if what == "tune: section" and change else "")
                + "; keep it as it was to resume, or tune into another out",
                cli=f"{tune_dir} was tuned with another {what}"
                + (f" ({change})" if what == "tune: section" and change else "")
                + "; keep it as it was to resume, or tune into another --out",
            )
    from clstm.run.sweep import plan_specs

    plan_specs(plan.specs, tune_dir, plan.base.name, False, resume, cli)
    try:
        write_json_atomic(path, record)
    except OSError as exc:
        raise OutputError(f"cannot write {path} ({exc.strerror or exc}); free space or choose "
                          "another out") from None  # fmt: skip


def _search(plan, tune_dir, engine, workers, resume, threads, benchmark, on_result, cli):
    """Run every trial; their rows (as a sweep's, with ``process_s``)."""
    total = len(plan.specs)

    def report(row: dict, done: int, total: int) -> None:
        if on_result is not None:
            if row.get("status") == "completed":  # what it is scored by, on validation data
                row = {**row, "validation_score": trial_score(Path(row["run_dir"]), plan.metric)}
            on_result("search", row, done, total)

    if benchmark is not None:
        return _in_process(plan, plan.specs, tune_dir, benchmark, plan.search, resume, report)
    if engine == "ray":
        from clstm.run.tune_ray import run_trials

        return run_trials(plan, tune_dir, resume, threads, report, cli)
    from clstm.run.sweep import run_specs

    result = run_specs(plan.raw, plan.specs, plan.base.name, out=tune_dir, workers=workers,
                       resume=resume, threads=threads, on_result=report, cli=cli)  # fmt: skip
    assert len(result.runs) == total
    return result.runs


def _in_process(plan, specs, out, benchmark, keep, resume, report) -> list[dict]:
    """Runs of a benchmark passed from Python, one after another in this process."""
    from clstm.data.sequences import as_sequence_benchmark
    from clstm.data.subset import select_experiences
    from clstm.errors import ClstmError
    from clstm.run.runner import run_experiment

    bench = as_sequence_benchmark(benchmark)
    if keep is not None:
        bench = select_experiences(bench, keep)
    rows = []
    for spec in specs:
        overrides = [o for o in spec.overrides if not o.startswith("benchmark.experiences=")]
        row = {"run_name": spec.run_name, "seed": spec.seed, "identity": spec.identity}
        t0 = time.perf_counter()
        try:
            result = run_experiment(
                plan.raw, benchmark=bench, overrides=overrides, seed=spec.seed, out=out,
                run_name=spec.run_name, resume=resume, chosen_by=spec.chosen_by,
            )  # fmt: skip
            row.update(result.row())
        except ClstmError as exc:
            row.update(status="failed", error=str(exc))
        row["process_s"] = round(time.perf_counter() - t0, 3)
        rows.append(row)
        report(row, len(rows), len(specs))
    return rows


def trial_score(run_dir: Path, metric: str) -> float | None:
    """A completed trial run's score: ``metric`` of its validation stream (or, for a search on
    validation tasks without a validation split, of their test split); None if undefined."""
    from clstm.run.outcome import load_run

    metrics = load_run(run_dir).metrics
    if metrics.get("status") != "completed":
        return None
    value = (metrics.get("validation") or metrics).get(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def _select(plan: _Plan, tune_dir: Path, rows: list[dict]) -> dict:
    """``selection.json``: every trial's values, seeds and score; the best (ties: earlier)."""
    from clstm.report.table import summarize_values

    by_trial: dict[str, dict] = {r["run_name"]: {} for r in rows}
    for r in rows:
        by_trial[r["run_name"]][r["seed"]] = r
    trials = []
    for i, values in enumerate(plan.trials):
        name = f"trial{i:03d}"
        seeds = by_trial.get(name, {})
        scores, statuses = [], []
        for seed in plan.spec.seeds:
            row = seeds.get(seed, {})
            statuses.append(row.get("status", "missing"))
            run_dir = run_dir_path(tune_dir, plan.base.name, name, seed)
            ok = row.get("status") == "completed"
            scores.append(trial_score(run_dir, plan.metric) if ok else None)
        complete = all(s is not None for s in scores)
        stat = summarize_values([s for s in scores if s is not None]) if complete else None
        trials.append({
            "trial": i, "run_name": name, "values": values, "seeds": list(plan.spec.seeds),
            "scores": scores, "statuses": statuses, "score": stat.mean if stat else None,
            "std": stat.std if stat else None, "ci95": stat.ci95 if stat else None,
            "stopped_early": any(s == "stopped" for s in statuses),
        })  # fmt: skip
    ranked = [t for t in trials if t["score"] is not None]
    if not ranked:
        raise OutputError(
            f"no trial of {tune_dir} completed every seed, so none can be selected; see their "
            f"errors in {tune_dir / plan.base.name / SWEEP}"
        )
    sign = 1 if plan.higher else -1
    best = max(ranked, key=lambda t: (round(sign * t["score"], _digits(t["score"])), -t["trial"]))
    where = (
        "the validation split of every experience" if plan.spec.selection == "split"
        else f"validation tasks {_names(plan.search)} (experiences of the stream)"
    )  # fmt: skip
    return {
        "experiment": plan.base.name, "metric": plan.metric,
        "direction": "higher" if plan.higher else "lower", "selection": plan.spec.selection,
        "selected_on": where, "search_experiences": plan.search,
        "final_experiences": plan.final, "seeds": list(plan.spec.seeds),
        "final_seeds": list(plan.spec.final_seeds), "scheduler": plan.spec.scheduler,
        "space": plan.spec.describe()["space"], "best": best["values"],
        "best_trial": best["run_name"], "best_score": best["score"],
        "tie_rule": "the earlier trial (the space's order, the grid's first values first)",
        "trials": trials,
    }  # fmt: skip


def _digits(score: float) -> int:
    """Decimal places that keep :data:`TIE_DIGITS` significant digits of ``score``."""
    if score == 0:
        return TIE_DIGITS
    return TIE_DIGITS - 1 - int(math.floor(math.log10(abs(score))))


def _names(indices: list[int] | None) -> str:
    return ", ".join(map(str, indices or []))


def _final(plan, folder, selection, workers, resume, threads, benchmark, on_result, cli):
    """The chosen setting, one ordinary run per final seed, on the final stream."""
    from clstm.run.outcome import load_run
    from clstm.run.sweep import plan_specs, run_specs

    best = selection["best"]
    overrides = _overrides(best)
    if plan.final is not None:
        overrides.append(f"benchmark.experiences={yaml_text(plan.final)}")
    strategy = best.get("strategy.name", plan.base.strategy.name)
    name = run_name_for(strategy, list(best.items()))
    chosen_by = {
        "selection": str(Path("..") / ".." / ".." / ".." / "tune" / SELECTION),
        "metric": plan.metric, "selected_on": selection["selected_on"],
        "best": best, "score": selection["best_score"], "trials": len(plan.trials),
    }  # fmt: skip
    specs = [_spec(plan.raw, name, seed, overrides, chosen_by) for seed in plan.spec.final_seeds]
    final_out = folder / "final"

    def report(row: dict, done: int, total: int) -> None:
        if on_result is not None:
            on_result("final", row, done, total)

    plan_specs(specs, final_out, plan.base.name, False, resume, cli)
    if benchmark is not None:
        rows = _in_process(plan, specs, final_out, benchmark, plan.final, resume, report)
    else:
        rows = run_specs(
            plan.raw, specs, plan.base.name, out=final_out, workers=workers, resume=resume,
            threads=threads, on_result=report, cli=cli,
        ).runs  # fmt: skip
    selection["final_runs"] = [
        os.path.relpath(run_dir_path(final_out, plan.base.name, name, s), folder)
        for s in plan.spec.final_seeds
    ]
    results = [load_run(r["run_dir"]) for r in rows if r.get("status") == "completed"]
    return rows, results


def chosen_text(selection: Mapping[str, Any]) -> str:
    """``selected on <data> by <metric>: key=value, ... (validation <metric> <score>)``."""
    m = METRICS[selection["metric"]]
    values = ", ".join(f"{k}={yaml_text(v)}" for k, v in selection["best"].items())
    ranked = sum(t["score"] is not None for t in selection["trials"])
    return (
        f"selected on {selection['selected_on']} by {m.label} ({selection['direction']} is "
        f"better; {ranked} of {len(selection['trials'])} trials ranked, seeds "
        f"{','.join(map(str, selection['seeds']))}): {values} (validation {m.label} "
        f"{m.text(selection['best_score'])})"
    )


def selection_text(result: TuneResult) -> str:
    """What ``clstm tune`` prints at the end: the selection and the final runs' summary."""
    from clstm.report.table import cell, summarize_values

    selection = result.selection
    lines = [chosen_text(selection)]
    if result.final:
        kind = result.final[0].kind
        stats = []
        for key in kind.cli_keys:
            values = [r.value(key) for r in result.final if r.value(key) is not None]
            if values:
                stats.append(f"{METRICS[key].label} {cell(summarize_values(values))}")
        where = (
            "" if selection["final_experiences"] is None
            else f" on experiences {_names(selection['final_experiences'])}"
        )  # fmt: skip
        lines.append(f"final: {len(result.final)} seed(s){where}: " + "   ".join(stats))
        lines.append("(mean ± std [± 95% CI]; numbers can differ slightly on another CPU model)")
    for row in result.failed:
        lines.append(f"not completed: {row['run_name']} seed {row['seed']}: {row['status']} "
                     f"({row.get('error')})")  # fmt: skip
    lines.append(f"selection: {result.folder / 'tune' / SELECTION}")
    return "\n".join(lines)
