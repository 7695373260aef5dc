"""Published values beside a report's rows (``clstm report ... --published FILE``).

A reproduction is read against the paper's numbers; typed into a table by hand they drift from the
runs. ``FILE`` maps experiment names (config ``name``) to lists of published results::

    ehret2021_permuted_copy_ewc:
      - run: ewc                             # the run name (the row, without its [...] keys)
        config: {benchmark.draw: ehret2021}  # optional: only rows whose config has these values
        source: Ehret et al. 2021, sequential/copy/README.rst, online EWC  # where they are from
        label: Ehret et al. (2021)           # optional: the row's name in LaTeX (default: source)
        values: {learning_accuracy: 0.9993, acc: 0.9866}  # clstm's units: fractions, not %
        printed_to: 0.0001                   # optional: the values' printed resolution
        runs: 1                              # optional: one run each (n: means of n runs)

Each experiment of the report with entries gets, in Markdown, a comparison table under its own: per
matching row and metric, the published value, clstm's mean with its seeds and 95% confidence
interval, the difference (clstm minus published) and whether the published value lies inside the
interval (undecided with one seed). A published value that is one run, or a mean of a few
(``runs: 1``, ``runs: 3``), is compared instead with where one run (a mean of that many runs) of
clstm's would fall: the 95% prediction interval ``mean ± t * sd * sqrt(1/runs + 1/n)``, which
does not narrow to nothing as clstm's seeds accumulate. A paper prints rounded values: with
``printed_to`` (the resolution, e.g. 0.01 for "~100%", which stands for anything from 99.5% to
100%) a value counts as inside when the interval meets the range that rounds to it, and the
table says so ("yes, to its rounding"); values beyond that range are never counted.

Entries of experiments the report does not hold are ignored (one file serves many reports); an
entry that matches no row of a reported experiment is named in the report, never dropped
silently. In LaTeX the published values are rows below the runs' (named by ``label``), in the
table's columns ("--" where the paper gives none), as papers print them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from clstm.errors import ConfigError
from clstm.metrics import METRICS, fixed

_MISSING = object()  # a config key a row does not have


@dataclass(frozen=True)
class Published:
    experiment: str
    run: str
    source: str
    values: dict[str, float]
    config: dict[str, object]
    label: str = ""  # the LaTeX row's name; the source when empty
    printed_to: float | None = None  # the resolution the paper printed the values to
    runs: int | None = None  # the runs behind each value (1: one run); None: taken as exact

    def rounding_range(self, value: float) -> tuple[float, float]:
        """The values that print as ``value`` at ``printed_to`` (just ``value`` without it)."""
        half = (self.printed_to or 0.0) / 2
        return value - half, value + half


def load_published(path: str | Path) -> list[Published]:
    """Read and check ``path``; :class:`ConfigError` names the entry and field at fault."""
    from clstm.config.yamlio import read_yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"published values file not found: {path}",
            cli=f"report --published {path}: no such file",
        )
    known = set(METRICS)
    entries = []
    expected = (
        "published-values file: expected experiment names at the top level, each with a list of "
        "entries, but it reads as {kind}; see experiments/published/values.yaml"
    )
    for experiment, items in read_yaml(path, expected).items():
        if not isinstance(items, list):
            raise ConfigError(f"{path}: {experiment} must hold a list of entries")
        for i, item in enumerate(items, 1):
            entries.append(_entry(f"{path}, {experiment} entry {i}", str(experiment), item, known))
    return entries


def _entry(where: str, experiment: str, item, known: set[str]) -> Published:
    fields = ("run", "source", "values", "config", "label", "printed_to", "runs")
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping with run, source and values")
    missing = [k for k in fields[:3] if not item.get(k)]
    extra = sorted(set(item) - set(fields))
    if missing or extra:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(extra)} (fields: {', '.join(fields)})"] if extra else []
        raise ConfigError(f"{where}: " + "; ".join(problems))
    values = item["values"]
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: values must map metrics to numbers")
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{where}: unknown metric {key!r} (one of {', '.join(sorted(known))})"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{where}: {key} must be a number, not {value!r}")
        if METRICS[key].fraction and not 0 <= value <= 1:  # a percentage typed by mistake
            raise ConfigError(
                f"{where}: {key} {value} is not a fraction in [0, 1]; give percentages / 100"
            )
    config = item.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: config must map dotted keys to values")
    printed_to = item.get("printed_to")
    if printed_to is not None and (
        isinstance(printed_to, bool)
        or not isinstance(printed_to, (int, float))
        or not 0 < printed_to <= 0.1
    ):
        raise ConfigError(
            f"{where}: printed_to {printed_to!r} must be the values' printed resolution as a "
            "fraction (0.01 for values printed to whole percent, 0.001 for one decimal)"
        )
    runs = item.get("runs")
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
        raise ConfigError(
            f"{where}: runs {runs!r} must be the number of runs behind each published value "
            "(1 for a single run, n for a mean over n seeds)"
        )
    values = {k: float(v) for k, v in values.items()}
    source = str(item["source"])
    label = str(item.get("label") or source)
    return Published(
        experiment, str(item["run"]), source, values, dict(config), label,
        None if printed_to is None else float(printed_to), runs,
    )  # fmt: skip


def comparisons(collected, published: list[Published]) -> dict[str, list[str]]:
    """Markdown lines per experiment of ``collected``: the comparison tables."""
    from clstm.run.rundir import flatten

    out: dict[str, list[str]] = {}
    for entry in published:
        groups = collected.get(entry.experiment)
        if groups is None:
            continue
        rows = [
            (label, g)
            for label, g in groups.items()
            if g.run_name == entry.run
            and all(flatten(g.config).get(k, _MISSING) == v for k, v in entry.config.items())
        ]
        lines = out.setdefault(entry.experiment, [])
        wanted = f"run {entry.run}" + "".join(f", {k}={v}" for k, v in entry.config.items())
        if not rows:
            lines += [f"Published ({entry.source}): no row of this experiment is {wanted}.", ""]
            continue
        interval = "95% CI" if entry.runs is None else (
            "95% interval for one run" if entry.runs == 1
            else f"95% interval for a mean of {entry.runs} runs"
        )  # fmt: skip
        lines += [
            f"Published: {entry.source}.",
            "",
            f"| row | metric | published | clstm (seeds) | {interval} | clstm − published | "
            f"published inside the {'CI' if entry.runs is None else 'interval'} |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, g in rows:
            for key, value in entry.values.items():
                stat = g.stat(key)
                if stat.mean is None:
                    lines.append(
                        f"| {label} | {METRICS[key].title} | {value:.4f} | — (0) | — | — | — |"
                    )
                    continue
                half = _half_width(stat, entry.runs)
                if half is None:
                    ci = inside = "—"
                else:
                    low, high = stat.mean - half, stat.mean + half
                    if METRICS[key].fraction:  # no accuracy above 100% or below 0
                        low, high = max(low, 0.0), min(high, 1.0)
                    ci, inside = f"{low:.4f} – {high:.4f}", _inside(low, high, value, entry)
                diff = fixed(stat.mean - value, 4, plus=True)
                title = METRICS[key].title
                lines.append(
                    f"| {label} | {title} | {value:.4f} | {stat.mean:.4f} ({stat.n}) | "
                    f"{ci} | {diff} | {inside} |"
                )
        if entry.runs is not None:
            theirs, ours = (
                ("one run", "one clstm run") if entry.runs == 1
                else (f"means of {entry.runs} runs", f"a mean of {entry.runs} clstm runs")
            )  # fmt: skip
            lines += [
                "",
                f"The published values are {theirs} each, so they are compared with where {ours} "
                "would fall (95%, Student's t: mean ± t·sd·√(1/runs + 1/seeds)), not with the "
                "interval of clstm's mean, which narrows with every seed while theirs does not.",
            ]
        if entry.printed_to is not None:
            lines += [
                "",
                f"The published values are printed to {_decimal(entry.printed_to)}: each stands "
                f"for the values that round to it (± {_decimal(entry.printed_to / 2)}).",
            ]
        lines.append("")
    return out


def _half_width(stat, runs: int | None) -> float | None:
    """The 95% half-width to compare a published value with: of clstm's mean (``runs`` None:
    the published value taken as exact), or, for a value that is itself one run or a mean of
    ``runs`` runs, of the difference between that and clstm's mean (Student's t on clstm's
    seeds: ``t * sd * sqrt(1/runs + 1/n)``, the prediction interval when ``runs`` is 1)."""
    if stat.ci95 is None:
        return None
    if runs is None:
        return stat.ci95
    from scipy import stats

    return float(stats.t.ppf(0.975, stat.n - 1) * stat.std * math.sqrt(1 / runs + 1 / stat.n))


def _inside(low: float, high: float, value: float, entry: Published) -> str:
    """Whether the published value lies in the 95% interval ``[low, high]`` (a fraction's within
    [0, 1], so "~100%" meets it as 99.5-100%): "yes", "no", or, when only the values that round
    to it (``printed_to``) meet the interval, "yes, to its rounding"."""
    if low <= value <= high:
        return "yes"
    first, last = entry.rounding_range(value)
    return "yes, to its rounding" if first <= high and low <= last else "no"


def latex_rows(published: list[Published], experiment: str, keys: list[str], escape) -> list[str]:
    """The LaTeX rows of ``experiment``'s published values in the columns ``keys`` (after a
    ``\\midrule``), to the digits printed (``printed_to``); none when the file has no entry."""
    rows = []
    for entry in (e for e in published if e.experiment == experiment):
        # to the digits the paper printed (printed_to), else as clstm's cells
        digits = 3 if entry.printed_to is None else max(0, round(-math.log10(entry.printed_to)))
        cells = [f"${entry.values[k]:.{digits}f}$" if k in entry.values else "--" for k in keys]
        rows.append(" & ".join([escape(entry.label), "--", *cells]) + r" \\")
    return [r"\midrule", *rows] if rows else []


def _decimal(x: float) -> str:
    """0.00005, not 5e-05."""
    return f"{x:.8f}".rstrip("0").rstrip(".")
