"""Aggregate finished runs into paper-ready tables and figures (``clstm report RESULTS_DIR``).

Runs are found as ``seed<k>/`` folders holding ``metrics.json`` (or only ``meta.json``: a run that
was killed) below the given folders (one experiment's folder or a whole ``results/``), plus runs a
``sweep.json`` lists that never produced a directory (refused or crashed early). Each run's
experiment and run name are those it recorded, not guessed from the folders.

**Grouping.** A row is one *identity*: the experiment, the run name and the resolved config
without the seed (``config.yaml``, see :mod:`clstm.rundir`). Runs of one run name whose configs
differ are never averaged together: they become separate rows, each labelled with the keys that
differ (``naive [train.lr=0.01]``). Two runs of one identity with the same seed (e.g. the same
folder passed twice, or copies) are refused, naming both paths. Unreadable runs are skipped with
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
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clstm.errors import ConfigError, OutputError
from clstm.io import write_text_atomic
from clstm.rundir import (
    differences,
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
)

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
    flat = _flat(group.config)
    if not keys:  # a run listed only in a sweep.json: its config is unknown
        return f"{group.run_name} [{group.identity[:8]}]"
    shown = ", ".join(f"{k}={value_text(flat.get(k))}" for k in sorted(keys)[:4])
    return f"{group.run_name} [{shown}{', ...' if len(keys) > 4 else ''}]"


def _flat(data, prefix: str = "") -> dict:
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            out |= _flat(v, f"{prefix}{k}.")
        return out
    return {prefix.rstrip("."): data}


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
        if seed in g.paths:
            raise ConfigError(
                f"seed {seed} of {m['experiment']}/{m['run_name']} appears twice with the same "
                f"config: {g.paths[seed]} and {run_dir}; pass only one of them to clstm report"
            )
        g.paths[seed] = run_dir
        recorded.add((m["experiment"], m["run_name"], seed))
        if m["status"] == "completed":
            g.completed.append(m)
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
    text = f"{stat.mean:.{digits}f}"
    if stat.std is not None:
        text += f" ± {stat.std:.{digits}f} [±{stat.ci95:.{digits}f}]"
    return text


def _best(groups: dict[str, RunGroup], key: str, higher: bool) -> set[str]:
    means = {name: g.stat(key).mean for name, g in groups.items()}
    valid = {n: m for n, m in means.items() if m is not None}
    if len(valid) < 2 or max(valid.values()) - min(valid.values()) < 1e-12:
        return set()  # nothing to single out (e.g. FWT is 0 by construction in some scenarios)
    target = max(valid.values()) if higher else min(valid.values())
    return {n for n, m in valid.items() if abs(m - target) < 1e-12}


def markdown(
    collected: dict[str, dict[str, RunGroup]], figures: dict[str, list[str]] | None = None
) -> str:
    """Markdown tables, one per experiment: mean ± std [± 95% CI half-width], seeds per row."""
    lines = []
    for experiment, groups in collected.items():
        lines += [f"### {experiment}", ""]
        lines.append(
            "| run | seeds | " + " | ".join(t for _, t, _ in METRICS) + " | not completed |"
        )
        lines.append("|---|---|" + "---|" * len(METRICS) + "---|")
        best = {key: _best(groups, key, higher) for key, _, higher in METRICS}
        for name, g in groups.items():
            cells = []
            for key, _, _ in METRICS:
                text = _fmt(g.stat(key))
                cells.append(f"**{text}**" if name in best[key] else text)
            lines.append(
                f"| {name} | {len(g.completed)} | " + " | ".join(cells) + f" | {g.note() or '—'} |"
            )
        lines.append("")
        for figure in (figures or {}).get(experiment, []):
            lines += [f"![{Path(figure).stem}]({figure})", ""]
    legend = (
        "Cells: mean ± sample standard deviation over the completed seeds [± half-width of "
        "the 95% confidence interval, Student's t]; **bold**: best mean in the column (higher is "
        "better except for the forgettings; none when all rows tie); —: undefined (e.g. joint "
        "training has no intermediate models) or fewer seeds. Runs that did not complete are "
        "listed, not averaged."
    )
    return legend + "\n\n" + "\n".join(lines)


def _tex_escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("#", r"\#"),
    ):
        text = text.replace(a, b)
    return text


def latex(collected: dict[str, dict[str, RunGroup]]) -> str:
    """One booktabs table per experiment; the best mean of each column in bold."""
    out = []
    for experiment, groups in collected.items():
        cols = "l" + "r" + "c" * len(METRICS)
        out += [
            r"\begin{table}[t]", r"\centering", r"\small",
            rf"\caption{{{_tex_escape(experiment)}: mean $\pm$ std over seeds ($n$ seeds).}}",
            rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
            "Run & $n$ & " + " & ".join(_tex_escape(t) for _, t, _ in METRICS) + r" \\",
            r"\midrule",
        ]  # fmt: skip
        best = {key: _best(groups, key, higher) for key, _, higher in METRICS}
        for name, g in groups.items():
            cells = []
            for key, _, _ in METRICS:
                s = g.stat(key)
                if s.mean is None:
                    cells.append("--")
                    continue
                text = f"{s.mean:.3f}" + (rf" $\pm$ {s.std:.3f}" if s.std is not None else "")
                cells.append(rf"\textbf{{{text}}}" if name in best[key] else text)
            flag = r"$^\dagger$" if g.not_completed else ""
            out.append(
                f"{_tex_escape(name)}{flag} & {len(g.completed)} & " + " & ".join(cells) + r" \\"
            )
        out += [r"\bottomrule", r"\end{tabular}"]
        if any(g.not_completed for g in groups.values()):
            out.append(r"\\[2pt]{\footnotesize $^\dagger$ some seeds did not complete (see CSV).}")
        out += [r"\end{table}", ""]
    return "\n".join(out)


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
        for name, g in groups.items():
            for key, _, _ in METRICS:
                s = g.stat(key)
                low = s.mean - s.ci95 if s.ci95 is not None else None
                high = s.mean + s.ci95 if s.ci95 is not None else None
                row = [experiment, name, key, s.n, s.mean, s.std, low, high, g.note()]
                writer.writerow(
                    ["" if v is None else (f"{v:.6f}" if isinstance(v, float) else v) for v in row]
                )
    return buffer.getvalue()


def _curves(g: RunGroup) -> np.ndarray:
    """Per seed, ACC after k experiences: mean of R[k-1, :k] (NaN where unmeasured)."""
    rows = []
    for m in g.completed:
        R = np.array(m["accuracy_matrix"], dtype=float)
        rows.append([np.mean(R[k - 1, :k]) for k in range(1, len(R) + 1)])
    return np.array(rows)


def figures(collected: dict[str, dict[str, RunGroup]], out: Path) -> dict[str, list[str]]:
    """PNG and PDF figures per experiment; returns the PNG paths relative to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    made: dict[str, list[str]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for experiment, groups in collected.items():
        names = [n for n, g in groups.items() if g.completed]
        if not names:
            continue
        # Accuracy over experiences, one line per run name, 95% CI band across seeds.
        fig, ax = plt.subplots(figsize=(6, 4))
        colors = plt.cm.tab20(np.linspace(0, 1, max(len(names), 2)))
        for index, name in enumerate(names):
            curves = _curves(groups[name])
            x = np.arange(1, curves.shape[1] + 1)
            n = np.sum(~np.isnan(curves), axis=0)
            with warnings.catch_warnings():  # joint: only the last point is measured (NaN rest)
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(curves, axis=0)
                std = np.nanstd(curves, axis=0, ddof=1) if curves.shape[0] > 1 else None
            style = ("-", "--", "-.", ":")[index % 4]
            ax.plot(x, mean, marker="o", linestyle=style, color=colors[index], label=name)
            if std is not None:
                half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * std / np.sqrt(np.maximum(n, 1))
                ax.fill_between(x, mean - half, mean + half, alpha=0.15, color=colors[index])
        ax.set(
            xlabel="experiences trained",
            ylabel="ACC on experiences seen",
            ylim=(0, 1),
            title=experiment,
        )
        ax.set_xticks(x)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        stem = f"{experiment}_accuracy"
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{stem}.{ext}", dpi=120)
        plt.close(fig)
        made.setdefault(experiment, []).append(f"{stem}.png")
        # Mean accuracy matrix per run name.
        cols = min(4, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.8 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            with warnings.catch_warnings():  # joint: rows never measured stay NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                R = np.nanmean(
                    [np.array(m["accuracy_matrix"], dtype=float) for m in groups[name].completed],
                    axis=0,
                )
            ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
            for (i, j), v in np.ndenumerate(R):
                if not np.isnan(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="w" if v < 0.6 else "k",
                    )
            ax.set_xticks(range(R.shape[1]))
            ax.set_yticks(range(R.shape[0]))
            ax.set_title(name, fontsize=8)
            ax.set_xlabel("test set of experience", fontsize=7)
            ax.set_ylabel("after training on", fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(names) :]:
            ax.axis("off")
        fig.tight_layout()
        stem = f"{experiment}_matrices"
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{stem}.{ext}", dpi=120)
        plt.close(fig)
        made[experiment].append(f"{stem}.png")
    return made


def write_report(
    results_dirs: Sequence[str | Path],
    out: str | Path | None = None,
    with_figures: bool = True,
    markdown_path: str | Path | None = None,
    command: str | None = None,
    with_skipped: bool = False,
):
    """Write ``report.md``, ``report.tex``, ``report.csv`` and figures into ``out``.

    ``markdown_path`` writes the Markdown there instead (figure links relative to it), headed by
    ``command``, the command that regenerates it. Returns the Markdown file's path (and, with
    ``with_skipped``, the list of runs skipped as unreadable, each with the reason).
    """
    collected = collect(*results_dirs)
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
    made = figures(collected, out) if with_figures else {}
    md_path = Path(markdown_path) if markdown_path else out / "report.md"
    relative = {
        e: [os.path.relpath(out / f, md_path.parent) for f in files] for e, files in made.items()
    }
    header = f"Regenerate with:\n\n```bash\n{command}\n```\n\n" if command else ""
    write_text_atomic(md_path, header + markdown(collected, relative))
    write_text_atomic(out / "report.tex", latex(collected))
    write_text_atomic(out / "report.csv", csv_text(collected))
    return (md_path, collected.skipped) if with_skipped else md_path
