"""The table model every report renders: rows of runs, their statistics, the columns shown, the
best values marked, and how numbers are printed.

A report's unit is a :class:`RunGroup` (the seeds of one identity, :mod:`clstm.report.collect`);
an experiment's groups form one table per family of target kinds (:func:`sections`: accuracy
tables, error tables), whose columns come from the metric catalogue (:mod:`clstm.metrics`) and
the kind (:class:`clstm.targets.TargetKind`). The Markdown, terminal, CSV and LaTeX renderers
(:mod:`~clstm.report.markdown`, :mod:`~clstm.report.latex`) and the published comparisons read
this module; it reads none of them. Imports numpy (and scipy for the intervals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clstm.errors import ConfigError
from clstm.metrics import CATALOGUE, MEASURES, Metric, fixed
from clstm.targets import KINDS


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
    """All seeds of one identity: one experiment, one run name, one config (minus the seed).

    ``completed`` holds the outcomes (:class:`clstm.run.outcome.RunResult`) of its completed
    seeds, the only ones averaged; the others are counted in ``not_completed``.
    """

    experiment: str
    run_name: str
    identity: str = ""
    config: dict = field(default_factory=dict)  # the identity (resolved config without seed)
    label: str = ""  # the row's name: the run name, plus the differing keys where needed
    completed: list = field(default_factory=list)  # RunResult of each completed seed
    not_completed: dict[str, list[int]] = field(default_factory=dict)  # status -> seeds
    paths: dict[int, Path] = field(default_factory=dict)  # seed -> run directory
    cpus: dict[int, str] = field(default_factory=dict)  # seed -> CPU model(s) it ran on

    def stat(self, key: str) -> Stat:
        return summarize_values([r.value(key) for r in self.completed if r.value(key) is not None])

    @property
    def kind(self):
        """The target kind of its runs (:mod:`clstm.targets`); None before any completed."""
        return self.completed[0].kind if self.completed else None

    def note(self) -> str:
        parts = [
            f"{len(s)} {status} (seed {', '.join(map(str, s))})"
            for status, s in sorted(self.not_completed.items())
        ]
        return "; ".join(parts)


def sections(experiment: str, groups: dict[str, RunGroup]) -> list[tuple[str, object, dict]]:
    """``[(title, kind, groups)]``: an experiment's rows, one table per family of target kinds.

    Runs of one family share columns (accuracies, or errors); an experiment whose runs are of
    several families (a grid over benchmarks) gets a table for each, titled by its measure, so
    no row is shown in another kind's columns. Rows with no completed run join the first table.
    """
    families: dict[str, tuple[object, dict]] = {}
    for name, g in groups.items():
        if g.kind is not None:
            families.setdefault(g.kind.family, (g.kind, {}))[1][name] = g
    if not families:  # no completed run at all: the default kind's table of "not completed"
        return [(experiment, next(iter(KINDS.values())), dict(groups))]
    first = next(iter(families.values()))[1]
    for name, g in groups.items():
        if g.kind is None:
            first[name] = g
    if len(families) == 1:
        ((kind, rows),) = families.values()
        return [(experiment, kind, {n: rows[n] for n in groups if n in rows})]
    return [
        (f"{experiment} ({MEASURES[kind.measures[0]].label})", kind,
         {n: rows[n] for n in groups if n in rows})
        for kind, rows in families.values()
    ]  # fmt: skip


#: the prequential scores of online streams (``online.batch``), shown where runs recorded them
ONLINE_KEYS = ("preq_acc", "preq_mse", "preq_mae")


def columns(
    groups: dict[str, RunGroup], kind, keys: Sequence[str] | None = None, title: str = ""
) -> tuple[list[Metric], list[str]]:
    """The metric columns of one table (``title``) - ``keys`` (default: the kind's default
    columns) that its kind records, in catalogue order - and the titles of those omitted because
    they are 0 in every run. Keys of which none applies to the table are refused (ConfigError):
    an empty table would hide its rows' numbers."""
    recorded = {
        k
        for g in groups.values()
        for r in g.completed
        for k in ONLINE_KEYS
        if r.metrics.get(k) is not None
    }  # online streams' prequential scores
    wanted = [m for m in CATALOGUE if m.key in (keys or [*kind.default_columns, *recorded])]
    wanted = [m for m in wanted if m.key in kind.summary_keys or m.key in recorded]
    if keys and not wanted:
        text = (f"none of {', '.join(keys)} is a metric of the runs of {title or 'a table'} "
                f"({kind.family} runs: {', '.join(kind.summary_keys)})")  # fmt: skip
        raise ConfigError(f"columns: {text}", cli=f"--columns: {text}")
    shown = [m for m in wanted if not zero_by_construction(groups, m.key)]
    return shown, [m.title for m in wanted if m not in shown]


def zero_by_construction(groups: dict[str, RunGroup], key: str) -> bool:
    """Whether every completed run has exactly 0 for ``key`` (FWT in task/class scenarios)."""
    values = [r.value(key) for g in groups.values() for r in g.completed]
    return bool(values) and all(v == 0 for v in values)


def zero_note(omitted: list[str]) -> str:
    """The note under a table whose columns ``omitted`` are 0 in every run."""
    if not omitted:
        return ""
    return (
        f"{', '.join(omitted)} omitted: exactly 0 in every run (0 by construction in this "
        "scenario, e.g. FWT with task heads or class-incremental heads)."
    )


def best(groups: dict[str, RunGroup], key: str, higher: bool) -> set[str]:
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
    top = valid[best_name]

    def interval(st: Stat) -> tuple[float, float]:
        half = st.ci95 or 0.0
        return st.mean - half, st.mean + half

    low, high = interval(top)
    return {n for n, st in valid.items() if interval(st)[0] <= high and interval(st)[1] >= low}


def best_per_column(groups: dict[str, RunGroup], metrics: list[Metric]) -> dict[str, set[str]]:
    """:func:`best` of every column."""
    return {m.key: best(groups, m.key, m.higher_is_better) for m in metrics}


def cell(stat: Stat, digits: int = 3) -> str:
    """``mean ± std [±CI half-width]`` (Markdown), ``—`` when undefined."""
    if stat.mean is None:
        return "—"
    text = fixed(stat.mean, digits)
    if stat.std is not None:
        text += f" ± {stat.std:.{digits}f} [±{stat.ci95:.{digits}f}]"
    return text
