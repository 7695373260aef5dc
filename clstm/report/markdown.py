"""The report's Markdown (``report.md``), terminal and CSV (``report.csv``) renderings of its
tables (:mod:`clstm.report.table`)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from clstm.metrics import fixed
from clstm.report.table import (
    ONLINE_KEYS,
    RunGroup,
    best_per_column,
    cell,
    columns,
    sections,
    zero_note,
)

LEGEND = (
    "Cells: mean ± sample standard deviation over the completed seeds [± half-width of "
    "the 95% confidence interval, Student's t]; **bold**: the best mean in the column and "
    "every row whose 95% confidence interval overlaps the best one's (higher is better "
    "except for the forgettings and the errors, MSE and MAE, where lower is; none when all "
    "rows tie); —: undefined (e.g. joint "
    "training has no intermediate models) or fewer seeds. Runs that did not complete are "
    "listed, not averaged."
)


def markdown(
    collected: dict[str, dict[str, RunGroup]],
    figures: dict[str, list[str]] | None = None,
    after: dict[str, list[str]] | None = None,
) -> str:
    """Markdown tables, one per experiment (per family of target kinds, :func:`sections`): mean
    ± std [± 95% CI half-width], seeds per row; ``after``: lines to put under an experiment's
    tables (the published values, :mod:`clstm.report.published`)."""
    lines = []
    for experiment, groups in collected.items():
        for title, kind, rows in sections(experiment, groups):
            lines += _markdown_table(title, kind, rows)
        lines += (after or {}).get(experiment, [])
        for figure in (figures or {}).get(experiment, []):
            lines += [f"![{Path(figure).stem}]({figure})", ""]
    for experiment, extra in (after or {}).items():  # e.g. a tune whose final runs are elsewhere
        if experiment not in collected:
            lines += extra
    return LEGEND + "\n\n" + "\n".join(lines)


def _markdown_table(title: str, kind, groups: dict[str, RunGroup]) -> list[str]:
    shown, omitted = columns(groups, kind, (*kind.summary_keys, *ONLINE_KEYS))
    lines = [f"### {title}", ""]
    lines.append("| run | seeds | " + " | ".join(m.title for m in shown) + " | not completed |")
    lines.append("|---|---|" + "---|" * len(shown) + "---|")
    best = best_per_column(groups, shown)
    for name, g in groups.items():
        cells = []
        for m in shown:
            text = cell(g.stat(m.key))
            cells.append(f"**{text}**" if name in best[m.key] else text)
        lines.append(
            f"| {name} | {len(g.completed)} | " + " | ".join(cells) + f" | {g.note() or '—'} |"
        )
    lines.append("")
    if omitted:
        lines += [zero_note(omitted), ""]
    cpus = Counter(cpu for g in groups.values() for cpu in g.cpus.values())
    if cpus:  # the same seed gives slightly different numbers on another CPU model
        machines = ", ".join(f"{cpu} ({n} run{'s' * (n != 1)})" for cpu, n in sorted(cpus.items()))
        lines += [f"Measured on: {machines}.", ""]
    return lines


def text_table(collected: dict[str, dict[str, RunGroup]], keys=None) -> str:
    """The main table as plain text for the terminal: mean ± 95% CI half-width per column
    (``keys``: the metrics shown where the kind has them; default its default columns)."""
    out = []
    for experiment, groups in collected.items():
        for title, kind, rows in sections(experiment, groups):
            out += _text_table(title, kind, rows, keys)
    return "\n".join(out).rstrip() + "\n"


def _text_table(title: str, kind, groups: dict[str, RunGroup], keys) -> list[str]:
    shown, omitted = columns(groups, kind, keys, title)
    header = ["run", "n", *(m.title for m in shown), "not completed"]
    rows = []
    for name, g in groups.items():
        cells = []
        for m in shown:
            st = g.stat(m.key)
            cells.append("-" if st.mean is None else fixed(st.mean) + (
                f" ± {st.ci95:.3f}" if st.ci95 is not None else ""))  # fmt: skip
        rows.append([name, str(len(g.completed)), *cells, g.note() or "-"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = [f"{title} (mean ± 95% CI half-width over seeds)"]
    for row in [header, *rows]:
        out.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if omitted:
        out.append("  " + zero_note(omitted))
    out.append("")
    return out


CSV_HEADER = ("experiment", "run", "metric", "n", "mean", "std", "ci95_low", "ci95_high",
              "not_completed")  # fmt: skip


def csv_text(collected: dict[str, dict[str, RunGroup]]) -> str:
    """Long format: one row per experiment, run and metric (every summary its runs' kind
    records), with n, mean, std and the CI."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for experiment, groups in collected.items():
        for _, kind, rows in sections(experiment, groups):
            for name, g in rows.items():
                for key in kind.summary_keys:
                    s = g.stat(key)
                    low = s.mean - s.ci95 if s.ci95 is not None else None
                    high = s.mean + s.ci95 if s.ci95 is not None else None
                    row = [experiment, name, key, s.n, s.mean, s.std, low, high, g.note()]
                    writer.writerow(
                        ["" if v is None else (f"{v:.6f}" if isinstance(v, float) else v)
                         for v in row]
                    )  # fmt: skip
    return buffer.getvalue()
