"""The figures of ``clstm report``: per experiment, the ACC (or MSE) curve of every row with 95%
confidence bands and the mean accuracy (or MSE) matrix of every row, one colour per strategy in
both, as PNG (300 dpi) and PDF. Reads the rows (:class:`clstm.report.RunGroup`) the report
collected; imports matplotlib (and scipy) only when drawing."""

from __future__ import annotations

import math
import textwrap
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from clstm.metrics import MEASURES, metric
from clstm.report.table import RunGroup, sections


def _measure(groups: dict[str, RunGroup]):
    """The measure the rows' figures show: their target kind's first (accuracy, or MSE)."""
    kind = next(g.kind for g in groups.values() if g.kind is not None)
    return MEASURES[kind.measures[0]]


def _matrix(result, measure) -> np.ndarray:
    """A run's matrix of ``measure``."""
    return np.array(result.matrix(measure.name)[1], dtype=float)


def _curves(g: RunGroup) -> np.ndarray:
    """Per seed, ACC (or the MSE) after k experiences: mean of R[k-1, :k] (NaN where
    unmeasured)."""
    rows = []
    measure = _measure({"": g})
    for result in g.completed:
        R = _matrix(result, measure)
        rows.append([np.mean(R[k - 1, :k]) for k in range(1, len(R) + 1)])
    return np.array(rows)


#: dots per inch of the PNG figures (the PDFs are vector graphics)
PNG_DPI = 300


def abbreviate(name: str, width: int = 14) -> str:
    """``name`` cut to ``width`` characters with an ellipsis (axis labels of long names)."""
    return name if len(name) <= width else name[: width - 1] + "…"


def strategy_style(groups: dict[str, RunGroup]) -> dict[str, tuple]:
    """Row label -> (colour, line style, marker): one colour per strategy in every figure.

    Colours follow the strategy's place in clstm's registry (Okabe-Ito-like tab10 order), so
    ``replay`` has the same colour in every report; rows of one strategy with different settings
    share its colour and differ in line style and marker.
    """
    from matplotlib import colormaps

    from clstm.strategies import STRATEGIES

    palette = colormaps["tab20"].colors
    order = list(STRATEGIES)
    styles, seen = {}, defaultdict(int)
    for label, g in groups.items():
        strategy = (g.config.get("strategy") or {}).get("name", g.run_name.split("_")[0])
        index = order.index(strategy) if strategy in order else len(order) + len(seen)
        colour = palette[(2 * index) % 20 if index < 10 else (2 * index + 1) % 20]
        k = seen[strategy]
        seen[strategy] += 1
        styles[label] = (colour, ("-", "--", "-.", ":")[k % 4], ("o", "s", "^", "D", "v")[k % 5])
    return styles


def _experience_names(g: RunGroup) -> list[str]:
    """The experiences' names, or their positions (``exp 1``, ...) when the seeds of a row saw
    different experiences at the same position (e.g. a class order shuffled per run, as TSCIL
    does): the matrices are averaged by position, so one seed's names would mislabel them."""
    runs = [r.experience_names or [] for r in g.completed]
    if not runs or not runs[0]:
        return []
    if any(list(r) != list(runs[0]) for r in runs[1:]):
        return [f"exp {i + 1}" for i in range(len(runs[0]))]
    return list(runs[0])


def accuracy_figure(experiment: str, groups: dict[str, RunGroup]):
    """ACC on the experiences seen so far after each experience: a line per row, 95% CI bands."""
    import matplotlib.pyplot as plt
    from scipy import stats

    names = [n for n, g in groups.items() if g.completed]
    styles = strategy_style({n: groups[n] for n in names})
    short, shared = distinct_names(names)
    fig, ax = plt.subplots(figsize=(6, 4))
    longest: list[str] = []
    for name in names:
        curves = _curves(groups[name])
        x = np.arange(1, curves.shape[1] + 1)
        n = np.sum(~np.isnan(curves), axis=0)
        with warnings.catch_warnings():  # joint: only the last point is measured (NaN rest)
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(curves, axis=0)
            std = np.nanstd(curves, axis=0, ddof=1) if curves.shape[0] > 1 else None
        colour, line, marker = styles[name]
        label = _wrapped(short[name], 36)
        ax.plot(x, mean, marker=marker, linestyle=line, color=colour, label=label)
        if std is not None:
            half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * std / np.sqrt(np.maximum(n, 1))
            ax.fill_between(x, mean - half, mean + half, alpha=0.15, color=colour)
        if len(_experience_names(groups[name])) > len(longest):
            longest = _experience_names(groups[name])
    measure = _measure(groups)
    if measure.higher_is_better:  # accuracies, in [0, 1]
        ylabel = f"{metric(measure.final).title} on experiences seen"
        ax.set(ylabel=ylabel, ylim=(0, 1), title=experiment)
    else:  # errors, from 0 up
        ax.set(ylabel=f"{measure.label} on experiences seen (lower is better)", title=experiment)
        ax.set_ylim(bottom=0)
    ax.set_xticks(np.arange(1, len(longest) + 1), [abbreviate(e) for e in longest],
                  rotation=30, ha="right", fontsize=7)  # fmt: skip
    ax.set_xlabel("after training on")
    if shared:  # what every row has in common, once, instead of in every label
        ax.set_title(_wrapped(f"all rows: {', '.join(shared)}", 90), fontsize=6)
        fig.suptitle(experiment, fontsize=11)
    if max((len(short[n]) for n in names), default=0) > LEGEND_INSIDE_CHARS:
        # long run names would cover the curves: the legend goes to the right, and the saved
        # figure grows to hold it (bbox "tight") instead of the plot shrinking to make room
        ax.legend(fontsize=6, ncol=1, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
    return fig


#: run names longer than this put the accuracy figure's legend beside the plot
LEGEND_INSIDE_CHARS = 28


def _parts(name: str) -> list[str]:
    """A row label's parts: the run name's (the strategy, then each ``key=value`` the run name
    holds) and those of the ``[key=value, ...]`` a report adds to tell configs apart."""
    import re

    base, _, bracket = name.partition(" [")
    # a part starts at "_section.key=" (every config key but device and checkpoint is dotted)
    parts = re.split(r"_(?=[A-Za-z]\w*(?:\.\w+)+=|(?:device|checkpoint)=)", base)
    return parts + [p.strip() for p in bracket.rstrip("]").split(",") if p.strip()]


def distinct_names(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """``({row label: the parts that tell it apart}, the parts every row shares)``: long run
    names made of the values of a sweep (``naive_benchmark.n_train=256_train.epochs=2``) are
    shown by what differs (``naive``), with the shared values said once. Rows keep their whole
    labels when there is one, or when the short ones would not tell them apart."""
    if len(names) < 2:
        return {n: n for n in names}, []
    parts = {n: _parts(n) for n in names}
    shared = [p for p in parts[names[0]] if all(p in parts[n] for n in names[1:])]
    short = {n: "_".join(p for p in parts[n] if p not in shared) for n in names}
    if not shared or any(not s for s in short.values()) or len(set(short.values())) < len(names):
        return {n: n for n in names}, []
    return short, shared


def _wrapped(label: str, width: int) -> str:
    """A long run name broken into lines (at its commas and spaces) for a legend or a title."""
    return textwrap.fill(label, width=width, break_long_words=False, break_on_hyphens=False)


def matrices_figure(groups: dict[str, RunGroup]):
    """The mean accuracy (or MSE) matrix of every row, experience names on both axes, one
    colour bar."""
    import matplotlib.pyplot as plt

    names = [n for n, g in groups.items() if g.completed]
    short, shared = distinct_names(names)
    measure = _measure(groups)
    errors = not measure.higher_is_better
    means = {}
    for name in names:
        with warnings.catch_warnings():  # joint: rows never measured stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            runs = [_matrix(r, measure) for r in groups[name].completed]
            means[name] = np.nanmean(runs, axis=0)
    top = max((np.nanmax(R) for R in means.values()), default=1.0) if errors else 1.0
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 0.8, 3.2 * rows), squeeze=False)
    image = None
    for ax, name in zip(axes.flat, names, strict=False):
        R = means[name]
        cmap = "viridis_r" if errors else "viridis"  # bright = good either way
        image = ax.imshow(R, vmin=0, vmax=top, cmap=cmap)
        for (i, j), v in np.ndenumerate(R):
            if not np.isnan(v):
                dark = v / top > 0.4 if errors else v < 0.6
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="w" if dark else "k")  # fmt: skip
        labels = [abbreviate(e, 12) for e in _experience_names(groups[name])]
        if len(labels) != R.shape[1]:
            labels = [str(k) for k in range(R.shape[1])]
        ax.set_xticks(range(R.shape[1]), labels, rotation=45, ha="right", fontsize=6)
        ax.set_yticks(range(R.shape[0]), labels, fontsize=6)
        title = short[name]
        ax.set_title(_wrapped(title, 34), fontsize=7 if len(title) > 34 else 8)
        ax.set_xlabel(f"{measure.label} on the test set of", fontsize=7)
        ax.set_ylabel("after training on", fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if shared:
        fig.suptitle(_wrapped(f"all rows: {', '.join(shared)}", 110), fontsize=7)
    fig.tight_layout()
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02)
    bar.set_label(f"{measure.label} (lower is better)" if errors else measure.label, fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def figures(collected: dict[str, dict[str, RunGroup]], out: Path) -> dict[str, list[str]]:
    """PNG (300 dpi) and PDF figures per experiment; returns the PNG paths relative to ``out``.

    ``<experiment>_accuracy`` (``_mse`` for runs measured by errors; :func:`accuracy_figure`)
    and ``<experiment>_matrices`` (:func:`matrices_figure`), with one colour per strategy in both
    (:func:`strategy_style`); an experiment with runs of several families of target kinds
    (:func:`clstm.report.table.sections`) gets both for each, its matrices then
    ``<experiment>_<measure>_matrices``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, list[str]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for experiment, all_groups in collected.items():
        if not any(g.completed for g in all_groups.values()):
            continue
        parts = sections(experiment, all_groups)
        for _, _, groups in parts:
            measure = _measure(groups).name
            matrices = "matrices" if len(parts) == 1 else f"{measure}_matrices"
            for name, fig in ((measure, accuracy_figure(experiment, groups)),
                              (matrices, matrices_figure(groups))):  # fmt: skip
                save_figure(fig, out / f"{experiment}_{name}")
                plt.close(fig)
                made.setdefault(experiment, []).append(f"{experiment}_{name}.png")
    return made


def save_figure(fig, stem: Path) -> None:
    """``stem.png`` (300 dpi) and ``stem.pdf``, reproducible bytes."""
    for ext in ("png", "pdf"):
        # bbox "tight": a legend beside the plot or a wrapped title is never cut off.
        # No creation date in the PDF: the same runs give the same bytes, so committed
        # figures change only when their numbers do.
        fig.savefig(
            stem.with_name(f"{stem.name}.{ext}"), dpi=PNG_DPI, bbox_inches="tight",
            metadata={"CreationDate": None} if ext == "pdf" else None,
        )  # fmt: skip
