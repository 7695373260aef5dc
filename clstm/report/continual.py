"""The report of continual evaluation (``eval.every``): the stability gap's table and figure.

For an experiment whose runs recorded curves (``metrics.json`` -> ``curves``): a table of the
curves' summaries (min-ACC, WC-ACC, WF, the gap's depth and recovery; their error analogues for
forecasts), mean ± std [± 95% CI] over seeds as every table, and the classic figure of De Lange
et al. (ICLR 2023): the test accuracy (or MSE) of each experience against the training
iteration, the experience boundaries as dotted lines, one panel per run, mean and 95% CI band
over its seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clstm.metrics import CONTINUAL_KEYS, MEASURES, METRICS
from clstm.report.latex import tex_escape
from clstm.report.table import RunGroup, best_per_column, cell, summarize_values


def continual_groups(groups: dict[str, RunGroup]) -> dict[str, RunGroup]:
    """The rows whose completed runs recorded curves."""
    return {n: g for n, g in groups.items()
            if any(r.metrics.get("curves") for r in g.completed)}  # fmt: skip


def _keys(groups: dict[str, RunGroup]) -> list[str]:
    kind = next(iter(groups.values())).kind
    return list(CONTINUAL_KEYS["accuracy" if kind.accuracy else "errors"])


def continual_markdown(experiment: str, groups: dict[str, RunGroup],
                       figure: str | None = None) -> list[str]:  # fmt: skip
    """The continual-evaluation table (and figure) of an experiment; [] without curves."""
    groups = continual_groups(groups)
    if not groups:
        return []
    shown = [METRICS[k] for k in _keys(groups)]
    best = best_per_column(groups, shown)
    lines = [f"#### {experiment}: continual evaluation", "",
             "The test stream evaluated during training (`eval.every`): min-ACC, WC-ACC and WF "
             "(De Lange et al. 2023) and the stability gap of each earlier experience when a new "
             "one starts (depth; recovery: iterations until back within `eval.tolerance` of its "
             "boundary value, median over the gaps that recovered).", "",
             "| run | seeds | " + " | ".join(m.title for m in shown) + " | gaps recovered |",
             "|---|---|" + "---|" * len(shown) + "---|"]  # fmt: skip
    for name, g in groups.items():
        cells = []
        for m in shown:
            text = cell(g.stat(m.key))
            cells.append(f"**{text}**" if name in best[m.key] else text)
        lines.append(f"| {name} | {len(g.completed)} | " + " | ".join(cells)
                     + f" | {_recovered(g)} |")  # fmt: skip
    lines.append("")
    if figure is not None:
        lines += [f"![{Path(figure).stem}]({figure})", ""]
    return lines


def _recovered(g: RunGroup) -> str:
    """``k/n`` gaps recovered over the group's seeds."""
    gaps = [gap for r in g.completed for gap in (r.metrics.get("stability_gaps") or [])]
    return f"{sum(gap['recovery'] is not None for gap in gaps)}/{len(gaps)}" if gaps else "—"


def continual_latex(experiment: str, groups: dict[str, RunGroup], label: str) -> list[str]:
    """The same table as a booktabs table; [] without curves."""
    groups = continual_groups(groups)
    if not groups:
        return []
    shown = [METRICS[k] for k in _keys(groups)]
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{lr" + "c" * len(shown) + "}", r"\toprule",
             r"Method & $n$ & " + " & ".join(tex_escape(m.title) for m in shown) + r" \\",
             r"\midrule"]  # fmt: skip
    for name, g in groups.items():
        cells = []
        for m in shown:
            st = g.stat(m.key)
            text = (
                "---"
                if st.mean is None
                else f"{st.mean:.3f}" + (rf" \pm {st.std:.3f}" if st.std is not None else "")
            )
            cells.append(text if text == "---" else f"${text}$")
        lines.append(f"{tex_escape(name)} & {len(g.completed)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{tex_escape(experiment)}: continual evaluation (mean $\pm$ std over "
              r"seeds): minimum and worst-case accuracy, windowed forgetting and the stability "
              r"gap (De Lange et al., 2023).}",
              rf"\label{{{label}{experiment}-continual}}", r"\end{table}", ""]  # fmt: skip
    return lines


def _mean_curve(g: RunGroup, measure: str, tested: int):
    """``(iterations, mean, CI half-width)`` of experience ``tested`` over the group's seeds, on
    the iterations every seed evaluated."""
    series = []
    for r in g.completed:
        c = ((r.metrics.get("curves") or {}).get("streams") or {}).get("test", {}).get(measure)
        if not c:
            continue
        it, te, v = (np.asarray(c[k]) for k in ("iteration", "tested", "value"))
        series.append(dict(zip(it[te == tested].tolist(), v[te == tested].tolist(), strict=True)))
    common = sorted(set.intersection(*(set(s) for s in series))) if series else []
    mean, half = [], []
    for i in common:
        st = summarize_values([s[i] for s in series])
        mean.append(st.mean)
        half.append(st.ci95 or 0.0)
    return np.array(common), np.array(mean), np.array(half)


def stability_figure(experiment: str, groups: dict[str, RunGroup]):
    """One panel per run: each experience's test accuracy (MSE) against the training iteration,
    the boundaries dotted, mean ± 95% CI over seeds. None without curves."""
    import matplotlib.pyplot as plt

    groups = continual_groups(groups)
    if not groups:
        return None
    kind = next(iter(groups.values())).kind
    measure = MEASURES[kind.measures[0]]
    n = len(groups)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.2 * rows), squeeze=False,
                             sharey=True)  # fmt: skip
    colours = plt.get_cmap("tab10")
    for ax, (name, g) in zip(axes.flat, groups.items(), strict=False):
        first = g.completed[0]
        names = first.experience_names
        ends = (first.metrics.get("curves") or {}).get("boundaries") or []
        for j, exp_name in enumerate(names):
            it, mean, half = _mean_curve(g, measure.name, j)
            if not len(it):
                continue
            colour = colours(j % 10)
            ax.plot(it, mean, color=colour, linewidth=1.2, label=exp_name)
            ax.fill_between(it, mean - half, mean + half, color=colour, alpha=0.2, linewidth=0)
        for end in ends[:-1]:
            ax.axvline(end, color="gray", linestyle=":", linewidth=0.8)
        ax.set_title(f"{name} ({len(g.completed)} seeds)", fontsize=9)
        ax.set_xlabel("training iteration")
        ax.set_ylabel(f"test {measure.label}")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8,
               bbox_to_anchor=(0.5, -0.02))  # fmt: skip
    fig.suptitle(f"{experiment}: continual evaluation (dotted: experience boundaries; "
                 "bands: 95% CI over seeds)", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
