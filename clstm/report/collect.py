"""Aggregate finished runs into paper-ready tables and figures (``clstm report RESULTS_DIR``).

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

import csv
import io
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clstm.errors import ConfigError, OutputError
from clstm.report.archive import same_run
from clstm.report.latex import (
    fixed,
    latex,  # noqa: F401  (clstm.report.latex, as before)
)
from clstm.run.io import write_text_atomic
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

#: (key in metrics.json, column title, True if higher is better)
METRICS = (
    ("acc", "ACC", True),
    ("bwt", "BWT", True),
    ("fwt", "FWT", True),
    ("forgetting", "Forgetting", False),
    ("forgetting_learned", "Forgetting (after learning)", False),
    ("learning_accuracy", "LA", True),
    # regression runs (forecasting): errors, lower is better (clstm.metrics error summaries)
    ("mse_final", "final MSE", False),
    ("mse_increase", "MSE increase", False),
    ("mse_forgetting", "MSE forgetting", False),
    ("mse_forward_change", "MSE forward change", False),
    ("mse_learning", "learning MSE", False),
    ("mae_final", "final MAE", False),
)
ACCURACY_KEYS = ("acc", "bwt", "fwt", "forgetting", "forgetting_learned", "learning_accuracy")

BIBTEX = """@software{clstm,
  title   = {clstm: continual learning with recurrent sequence models on Avalanche},
  author  = {{clstm developers}},
  year    = {2026},
  version = {VERSION},
  note    = {Built on Avalanche (Carta et al., 2023)}
}"""


@dataclass
class Stat:
    """Mean, standard deviation and 95% CI half-width of one metric over ``n`` seeds."""

    n: int
    mean: float | None = None
    std: float | None = None
    ci95: float | None = None


def summarize_values(values: list[float]) -> Stat:
    """Mean, sample std (ddof=1) and Student-t 95% CI half-width; std/CI need two values."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return Stat(0)
    mean = float(np.mean(values))
    if n == 1:
        return Stat(1, mean)
    std = float(np.std(values, ddof=1))
    return Stat(n, mean, std, float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)))


@dataclass
class RunGroup:
    """All seeds of one identity: one experiment, one run name, one config (minus the seed)."""

    experiment: str
    run_name: str
    identity: str = ""
    config: dict = field(default_factory=dict)  # the identity (resolved config without seed)
    label: str = ""  # the row's name: the run name, plus the differing keys where needed
    completed: list[dict] = field(default_factory=list)
    not_completed: dict[str, list[int]] = field(default_factory=dict)  # status -> seeds
    paths: dict[int, Path] = field(default_factory=dict)  # seed -> run directory

    def stat(self, key: str) -> Stat:
        return summarize_values([m[key] for m in self.completed if m.get(key) is not None])

    def note(self) -> str:
        parts = [
            f"{len(s)} {status} (seed {', '.join(map(str, s))})"
            for status, s in sorted(self.not_completed.items())
        ]
        return "; ".join(parts)


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
    run_dirs = {p.parent for p in root.rglob("seed*/metrics.json")}
    run_dirs |= {p.parent for p in root.rglob("seed*/meta.json")}
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
            g.completed.append({**m, "cpu": recorded_cpu(run_dir)})
        else:
            g.not_completed.setdefault(m["status"], []).append(seed)
    for path in sorted(root.rglob("sweep.json")):
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
        meta = read_json_file(run_dir / "meta.json")
        first = str(meta.get("cpu") or "CPU not recorded")
        later = [r.get("cpu") for r in meta.get("resumed") or [] if isinstance(r, dict)]
    except (OutputError, AttributeError):  # no meta.json, or not a JSON object
        return "CPU not recorded"
    others = sorted({str(cpu) for cpu in later if cpu and cpu != meta.get("cpu")})
    return first + "".join(f", resumed on {cpu}" for cpu in others)


def _read_run(run_dir: Path) -> tuple[dict, dict]:
    """A run's metrics (or, for a run killed before writing them, its status) and its config."""
    config = read_config_dict(run_dir)
    path = run_dir / "metrics.json"
    if path.exists():
        m = read_json_file(path)
        missing = [k for k in ("experiment", "seed", "status", "accuracy_matrix") if k not in m]
        if missing:
            raise OutputError(f"{path} lacks {', '.join(missing)}")
        if not isinstance(m["seed"], int) or m["seed"] != config.get("seed"):
            raise OutputError(f"{path}: seed {m['seed']!r} is not the seed of its config.yaml")
    else:  # killed before the end: status from meta.json (running without a lock: interrupted)
        meta = read_json_file(run_dir / "meta.json")
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


def _fmt(stat: Stat, digits: int = 3) -> str:
    if stat.mean is None:
        return "—"
    text = fixed(stat.mean, digits)
    if stat.std is not None:
        text += f" ± {stat.std:.{digits}f} [±{stat.ci95:.{digits}f}]"
    return text


#: the columns of the LaTeX and terminal tables unless others are asked for
DEFAULT_COLUMNS = ("acc", "bwt", "forgetting", "learning_accuracy")
#: the same for experiments of regression runs
DEFAULT_ERROR_COLUMNS = ("mse_final", "mse_increase", "mse_forgetting", "mse_learning")


def is_regression(groups: dict[str, RunGroup]) -> bool:
    """Whether an experiment's runs have regression targets (errors instead of accuracies)."""
    return any(m.get("target") == "regression" for g in groups.values() for m in g.completed)


def _keys_for(groups: dict[str, RunGroup], keys) -> list[str]:
    """``keys`` for this experiment's kind: the default columns of accuracy runs become the
    error columns for regression runs, and only metrics of the experiment's kind are shown."""
    regression = is_regression(groups)
    if tuple(keys) == DEFAULT_COLUMNS and regression:
        keys = DEFAULT_ERROR_COLUMNS
    return [k for k in keys if (k in ACCURACY_KEYS) != regression]


def _best(groups: dict[str, RunGroup], key: str, higher: bool) -> set[str]:
    """Rows to mark in column ``key``: the best mean, and every row whose 95% CI overlaps it.

    So a difference that the seeds cannot tell apart (0.946 vs 0.943 with CIs of +-0.01) marks
    both rows. Rows with a single seed have no CI: they count by their mean alone. None is
    marked when fewer than two rows have a value or all means tie.
    """
    stats = {name: g.stat(key) for name, g in groups.items()}
    valid = {n: st for n, st in stats.items() if st.mean is not None}
    if len(valid) < 2:
        return set()
    means = [st.mean for st in valid.values()]
    if max(means) - min(means) < 1e-12:
        return set()  # nothing to single out (e.g. FWT is 0 by construction in some scenarios)
    best_name = (max if higher else min)(valid, key=lambda n: valid[n].mean)
    best = valid[best_name]

    def interval(st: Stat) -> tuple[float, float]:
        half = st.ci95 or 0.0
        return st.mean - half, st.mean + half

    low, high = interval(best)
    return {n for n, st in valid.items() if interval(st)[0] <= high and interval(st)[1] >= low}


def zero_by_construction(groups: dict[str, RunGroup], key: str) -> bool:
    """Whether every completed run has exactly 0 for ``key`` (FWT in task/class scenarios)."""
    values = [m.get(key) for g in groups.values() for m in g.completed]
    return bool(values) and all(v == 0 for v in values)


def _columns(groups: dict[str, RunGroup], keys) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """The metric columns to show (``keys`` in METRICS order, those of the experiment's kind)
    and the names of omitted ones."""
    keys = _keys_for(groups, keys)
    wanted = [m for m in METRICS if m[0] in keys]
    shown = [m for m in wanted if not zero_by_construction(groups, m[0])]
    return shown, [title for key, title, _ in wanted if (key, title, _) not in shown]


def _zero_note(omitted: list[str]) -> str:
    if not omitted:
        return ""
    return (
        f"{', '.join(omitted)} omitted: exactly 0 in every run (0 by construction in this "
        "scenario, e.g. FWT with task heads or class-incremental heads)."
    )


def markdown(
    collected: dict[str, dict[str, RunGroup]],
    figures: dict[str, list[str]] | None = None,
    after: dict[str, list[str]] | None = None,
) -> str:
    """Markdown tables, one per experiment: mean ± std [± 95% CI half-width], seeds per row;
    ``after``: lines to put under an experiment's table (the published values,
    :mod:`clstm.report.published`)."""
    lines = []
    for experiment, groups in collected.items():
        columns, omitted = _columns(groups, [k for k, _, _ in METRICS])
        lines += [f"### {experiment}", ""]
        lines.append(
            "| run | seeds | " + " | ".join(t for _, t, _ in columns) + " | not completed |"
        )
        lines.append("|---|---|" + "---|" * len(columns) + "---|")
        best = {key: _best(groups, key, higher) for key, _, higher in columns}
        for name, g in groups.items():
            cells = []
            for key, _, _ in columns:
                text = _fmt(g.stat(key))
                cells.append(f"**{text}**" if name in best[key] else text)
            lines.append(
                f"| {name} | {len(g.completed)} | " + " | ".join(cells) + f" | {g.note() or '—'} |"
            )
        lines.append("")
        if omitted:
            lines += [_zero_note(omitted), ""]
        cpus = Counter(m["cpu"] for g in groups.values() for m in g.completed)
        if cpus:  # the same seed gives slightly different numbers on another CPU model
            machines = ", ".join(
                f"{cpu} ({n} run{'s' * (n != 1)})" for cpu, n in sorted(cpus.items())
            )
            lines += [f"Measured on: {machines}.", ""]
        lines += (after or {}).get(experiment, [])
        for figure in (figures or {}).get(experiment, []):
            lines += [f"![{Path(figure).stem}]({figure})", ""]
    legend = (
        "Cells: mean ± sample standard deviation over the completed seeds [± half-width of "
        "the 95% confidence interval, Student's t]; **bold**: the best mean in the column and "
        "every row whose 95% confidence interval overlaps the best one's (higher is better "
        "except for the forgettings and the errors, MSE and MAE, where lower is; none when all "
        "rows tie); —: undefined (e.g. joint "
        "training has no intermediate models) or fewer seeds. Runs that did not complete are "
        "listed, not averaged."
    )
    return legend + "\n\n" + "\n".join(lines)


def text_table(collected: dict[str, dict[str, RunGroup]], keys=DEFAULT_COLUMNS) -> str:
    """The main table as plain text for the terminal: mean ± 95% CI half-width per column."""
    out = []
    for experiment, groups in collected.items():
        columns, omitted = _columns(groups, keys)
        header = ["run", "n", *(t for _, t, _ in columns), "not completed"]
        rows = []
        for name, g in groups.items():
            cells = []
            for key, _, _ in columns:
                st = g.stat(key)
                cells.append("-" if st.mean is None else fixed(st.mean) + (
                    f" ± {st.ci95:.3f}" if st.ci95 is not None else ""))  # fmt: skip
            rows.append([name, str(len(g.completed)), *cells, g.note() or "-"])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        out.append(f"{experiment} (mean ± 95% CI half-width over seeds)")
        for row in [header, *rows]:
            out.append(
                "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
        if omitted:
            out.append("  " + _zero_note(omitted))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def csv_text(collected: dict[str, dict[str, RunGroup]]) -> str:
    """Long format: one row per experiment, run and metric, with n, mean, std and the CI."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "experiment",
            "run",
            "metric",
            "n",
            "mean",
            "std",
            "ci95_low",
            "ci95_high",
            "not_completed",
        ]
    )
    for experiment, groups in collected.items():
        keys = _keys_for(groups, [k for k, _, _ in METRICS])  # the experiment's kind's metrics
        for name, g in groups.items():
            for key in keys:
                s = g.stat(key)
                low = s.mean - s.ci95 if s.ci95 is not None else None
                high = s.mean + s.ci95 if s.ci95 is not None else None
                row = [experiment, name, key, s.n, s.mean, s.std, low, high, g.note()]
                writer.writerow(
                    ["" if v is None else (f"{v:.6f}" if isinstance(v, float) else v) for v in row]
                )
    return buffer.getvalue()


@dataclass
class Report:
    """What :func:`write_report` wrote and found."""

    markdown_path: Path
    table: str  # the main table as plain text (what `clstm report` prints)
    skipped: list[str]  # runs that could not be read, each with the reason
    archived: tuple[int, int] | None = None  # with archive: (runs copied, runs already there)


def parse_columns(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"acc,bwt,fwt"`` -> the metric keys, checked; ``None`` -> :data:`DEFAULT_COLUMNS`."""
    if text is None:
        return DEFAULT_COLUMNS
    keys = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    known = [k for k, _, _ in METRICS]
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        raise ConfigError(f"columns: unknown metric {unknown[0] if unknown else '(none)'!r}; "
                          f"choose from {', '.join(known)}")  # fmt: skip
    return tuple(keys)


def write_report(
    results_dirs: Sequence[str | Path],
    out: str | Path | None = None,
    with_figures: bool = True,
    markdown_path: str | Path | None = None,
    command: str | None = None,
    columns: str | Sequence[str] | None = None,
    tex_caption: str | None = None,
    tex_label: str = "tab:",
    archive: str | Path | None = None,
    published: str | Path | None = None,
) -> Report:
    """Write ``report.md``, ``report.tex``, ``report.csv`` and figures into ``out``.

    ``markdown_path`` writes the Markdown there instead (figure links relative to it), headed by
    ``command``, the command that regenerates it. ``columns`` picks the metrics of the LaTeX and
    plain-text tables (default ACC, BWT, forgetting, learning accuracy; Markdown and CSV hold
    all); ``tex_caption`` (``{experiment}`` is replaced) and ``tex_label`` (a prefix to the
    experiment's name) go into each LaTeX table. ``archive`` copies the files behind every
    completed run into that folder (:func:`clstm.report.archive.archive_runs`) before writing;
    ``published``, a file of published values (:mod:`clstm.report.published`), adds a
    comparison under each experiment it names.
    """
    keys = parse_columns(columns)
    after, entries = {}, []
    if published is not None:
        from clstm.report.published import comparisons, load_published

        entries = load_published(published)  # a faulty file is refused before anything is read
    collected = collect(*results_dirs)
    if published is not None:
        after = comparisons(collected, entries)
    out = Path(out) if out is not None else Path(results_dirs[0]) / "report"
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"the report's output folder {out} is a file; give a folder for the report",
            cli=f"report --out {out} is a file; give a folder for the report",
        )
    if markdown_path is not None and Path(markdown_path).is_dir():
        raise ConfigError(
            f"the report's Markdown path {markdown_path} is a folder; give a file path",
            cli=f"report --markdown {markdown_path} is a folder; give a file path",
        )
    archived = None
    if archive is not None:
        from clstm.report.archive import archive_runs

        archived = archive_runs(collected, archive)
    from clstm.report.figures import figures  # matplotlib's import only where drawn

    made = figures(collected, out) if with_figures else {}
    md_path = Path(markdown_path) if markdown_path else out / "report.md"
    relative = {
        e: [os.path.relpath(out / f, md_path.parent) for f in files] for e, files in made.items()
    }
    header = f"Regenerate with:\n\n```bash\n{command}\n```\n\n" if command else ""
    write_text_atomic(md_path, header + markdown(collected, relative, after))
    write_text_atomic(out / "report.tex", latex(collected, keys, tex_caption, tex_label, entries))
    write_text_atomic(out / "report.csv", csv_text(collected))
    return Report(md_path, text_table(collected, keys), collected.skipped, archived)
