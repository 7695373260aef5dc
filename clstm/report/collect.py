"""Finding the runs a report aggregates (``clstm report RESULTS_DIR``) and grouping their seeds.

Runs are found as ``seed<k>/`` folders holding ``metrics.json`` (or only ``meta.json``: a run that
was killed) below the given folders (one experiment's folder or a whole ``results/``), plus runs a
``sweep.json`` lists that never produced a directory (refused or crashed early). Each run's
experiment and run name are those it recorded, not guessed from the folders.

**Grouping.** A row is one *identity*: the experiment, the run name and the resolved config
without the seed (``config.yaml``, see :mod:`clstm.run.rundir`). Runs of one run name whose configs
differ are never averaged together: they become separate rows, each labelled with the keys that
differ (``naive [train.lr=0.01]``). A run found twice (the same folder, or a copy of it: identical
``metrics.json``, e.g. an archive, :mod:`clstm.report.archive`) counts once; two different runs
of one identity with the same seed are refused, naming both paths. Unreadable runs are skipped with
a one-line warning that lists them.

For every row, over its *completed* seeds: mean, sample standard deviation and a 95% confidence
interval ``mean +- t(0.975, n-1) * std / sqrt(n)`` (Student's t) of every metric, and the number of
seeds behind each value. Runs that did not complete are counted and flagged, never averaged in.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from clstm.errors import ConfigError, OutputError
from clstm.report.archive import same_run
from clstm.report.table import RunGroup
from clstm.run.files import META, METRICS, SWEEP, TUNE
from clstm.run.outcome import result_from_metrics
from clstm.run.rundir import (
    differences,
    flatten,
    identity,
    identity_hash,
    read_config_dict,
    read_json_file,
    recorded_status,
    value_text,
)


class Collected(dict):
    """``{experiment: {row label: RunGroup}}``, plus ``skipped``: runs that could not be read."""

    def __init__(self, *args, skipped: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped = list(skipped or [])


def collect(*results_dirs: str | Path) -> Collected:
    """``{experiment: {row label: RunGroup}}`` for every run below the given folders.

    Raises :class:`ConfigError` for a missing folder, no runs at all, or a seed that appears
    twice in one identity; unreadable runs are skipped and listed in ``.skipped``.
    """
    found: dict[tuple[str, str, str], RunGroup] = {}
    skipped: list[str] = []
    seen_dirs: set[Path] = set()
    for root in map(Path, results_dirs):
        if not root.is_dir():
            raise ConfigError(f"results folder not found: {root}")
        _collect_into(found, root, skipped, seen_dirs)
    if not found:
        raise ConfigError(
            f"no runs (seed*/metrics.json) below {', '.join(map(str, results_dirs))}"
            + (f"; {len(skipped)} unreadable" if skipped else "")
        )
    collected = Collected(skipped=skipped)
    by_name: dict[tuple[str, str], list[RunGroup]] = defaultdict(list)
    for g in found.values():
        by_name[(g.experiment, g.run_name)].append(g)
    for (experiment, run_name), groups in by_name.items():
        for g in groups:
            g.label = run_name if len(groups) == 1 else _label(g, groups)
            collected.setdefault(experiment, {})[g.label] = g
    for experiment in list(collected):
        collected[experiment] = dict(sorted(collected[experiment].items()))
    ordered = Collected(skipped=skipped)
    ordered.update(sorted(collected.items()))
    return ordered


def _label(group: RunGroup, groups: list[RunGroup]) -> str:
    """``run [key=value, ...]`` with the keys where this group's config differs from the others."""
    keys: list[str] = []
    for other in groups:
        if other is not group:
            keys += [k for k, _, _ in differences(group.config, other.config) if k not in keys]
    flat = flatten(group.config)
    if not keys:  # a run listed only in a sweep.json: its config is unknown
        return f"{group.run_name} [{group.identity[:8]}]"
    shown = ", ".join(f"{k}={value_text(flat.get(k))}" for k in sorted(keys)[:4])
    return f"{group.run_name} [{shown}{', ...' if len(keys) > 4 else ''}]"


def _collect_into(
    found: dict[tuple[str, str, str], RunGroup],
    root: Path,
    skipped: list[str],
    seen_dirs: set[Path],
) -> None:
    run_dirs = {p.parent for p in root.rglob(f"seed*/{METRICS}")}
    run_dirs |= {p.parent for p in root.rglob(f"seed*/{META}")}
    # a tune's trials (OUT/NAME/tune/...) were scored on validation data: its own tables show
    # them (clstm.report.tuned), not the experiment's
    tunes = {p.parent for p in root.rglob(TUNE)} | ({root} if (root / TUNE).exists() else set())
    run_dirs = {d for d in run_dirs if not any(t in d.parents for t in tunes)}
    recorded: set[tuple[str, str, int]] = set()
    for run_dir in sorted(run_dirs):
        real = run_dir.resolve()
        if real in seen_dirs:  # the same folder reached twice (nested or repeated arguments)
            continue
        seen_dirs.add(real)
        try:
            m, config = _read_run(run_dir)
        except OutputError as exc:
            skipped.append(f"{run_dir} ({exc})")
            continue
        ident = identity_hash(config)
        key = (m["experiment"], m["run_name"], ident)
        g = found.setdefault(key, RunGroup(m["experiment"], m["run_name"], ident, identity(config)))
        seed = m["seed"]
        if seed in g.paths and same_run(g.paths[seed], run_dir):
            continue  # a copy of a run read already (e.g. archived): counted once
        if seed in g.paths:
            raise ConfigError(
                f"seed {seed} of {m['experiment']}/{m['run_name']} appears twice with the same "
                f"config: {g.paths[seed]} and {run_dir}; pass only one of them to clstm report"
            )
        g.paths[seed] = run_dir
        recorded.add((m["experiment"], m["run_name"], seed))
        if m["status"] == "completed":
            try:
                g.completed.append(result_from_metrics(run_dir, m))
            except OutputError as exc:
                del g.paths[seed]
                skipped.append(f"{run_dir} ({exc})")
                continue
            g.cpus[seed] = recorded_cpu(run_dir)
        else:
            g.not_completed.setdefault(m["status"], []).append(seed)
    for path in sorted(p for p in root.rglob(SWEEP) if not any(t in p.parents for t in tunes)):
        try:
            sweep = read_json_file(path)
            experiment, runs = sweep["experiment"], list(sweep["runs"])
            rows = [(r["run_name"], int(r["seed"]), r["status"], r.get("identity")) for r in runs]
        except (OutputError, KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{path} ({exc})")
            continue
        for run_name, seed, status, ident in rows:
            if (experiment, run_name, seed) in recorded or any(
                seed in g.paths
                for g in found.values()
                if (g.experiment, g.run_name) == (experiment, run_name)
            ):
                continue  # its run directory was read above
            recorded.add((experiment, run_name, seed))
            status = status if status != "completed" else "missing"
            matches = [
                g for g in found.values()
                if (g.experiment, g.run_name) == (experiment, run_name)
                and (ident is None or g.identity == ident)
            ]  # fmt: skip
            g = matches[0] if matches else found.setdefault(
                (experiment, run_name, str(ident)), RunGroup(experiment, run_name, str(ident))
            )  # fmt: skip
            g.not_completed.setdefault(status, []).append(seed)


def recorded_cpu(run_dir: Path) -> str:
    """The CPU model a run's ``meta.json`` names (runs made before clstm recorded it: unknown),
    and any other one a process that resumed it ran on: such a run's numbers mix the two."""
    try:
        meta = read_json_file(run_dir / META)
        first = str(meta.get("cpu") or "CPU not recorded")
        later = [r.get("cpu") for r in meta.get("resumed") or [] if isinstance(r, dict)]
    except (OutputError, AttributeError):  # no meta.json, or not a JSON object
        return "CPU not recorded"
    others = sorted({str(cpu) for cpu in later if cpu and cpu != meta.get("cpu")})
    return first + "".join(f", resumed on {cpu}" for cpu in others)


def _read_run(run_dir: Path) -> tuple[dict, dict]:
    """A run's metrics (or, for a run killed before writing them, its status) and its config."""
    config = read_config_dict(run_dir)
    path = run_dir / METRICS
    if path.exists():
        m = read_json_file(path)
        missing = [k for k in ("experiment", "seed", "status", "accuracy_matrix") if k not in m]
        if missing:
            raise OutputError(f"{path} lacks {', '.join(missing)}")
        if not isinstance(m["seed"], int) or m["seed"] != config.get("seed"):
            raise OutputError(f"{path}: seed {m['seed']!r} is not the seed of its config.yaml")
    else:  # killed before the end: status from meta.json (running without a lock: interrupted)
        meta = read_json_file(run_dir / META)
        m = {
            "experiment": config["name"], "seed": config["seed"],
            "status": recorded_status(run_dir) or "unknown",
            "accuracy_matrix": [],
        }  # fmt: skip
        m["run_name"] = meta.get("run_name", run_dir.parent.name)
    m.setdefault("run_name", run_dir.parent.name)  # runs written before run names were recorded
    if m["experiment"] != config["name"]:
        raise OutputError(f"{path}: experiment {m['experiment']!r} is not its config's name")
    return m, config
