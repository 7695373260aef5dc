"""The report of a tune (``clstm tune``): the selection line, the search table and its figure.

A tune's folder ``OUT/NAME/tune/`` holds ``tune.json`` and ``selection.json``
(:mod:`clstm.run.tune`); its trials are left out of the experiment's tables (they were scored on
validation data) and shown here instead: one row per trial (its values, seeds and validation
score, mean ± std [± 95% CI] over its seeds), the selected trial in bold, and a figure of the
validation score against each searched parameter. The final runs are the experiment's ordinary
rows, under which this goes.
"""

from __future__ import annotations

import re
from pathlib import Path

from clstm.errors import OutputError
from clstm.metrics import METRICS
from clstm.report.latex import tex_escape
from clstm.report.table import Stat, cell
from clstm.run.files import SELECTION, TUNE
from clstm.run.grid import yaml_text
from clstm.run.rundir import read_json_file
from clstm.run.tune import chosen_text


def find_tunes(*dirs: str | Path, skipped: list[str] | None = None) -> list[tuple[Path, dict]]:
    """``(tune folder, selection)`` of every finished tune below ``dirs`` (an unreadable
    ``selection.json`` is added to ``skipped``)."""
    found, seen = [], set()
    for root in map(Path, dirs):
        candidates = sorted(root.rglob(SELECTION))
        for path in candidates:
            folder = path.parent
            if not (folder / TUNE).exists() or folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            try:
                selection = read_json_file(path)
                selection["trials"], selection["best"], selection["metric"]  # noqa: B018
            except (OutputError, KeyError, TypeError) as exc:
                if skipped is not None:
                    skipped.append(f"{path} ({exc})")
                continue
            found.append((folder, selection))
    return found


def _keys(selection: dict) -> list[str]:
    return list(selection["space"])


def _stat(trial: dict) -> Stat:
    if trial["score"] is None:
        return Stat(0)
    n = sum(s is not None for s in trial["scores"])
    return Stat(n, trial["score"], trial.get("std"), trial.get("ci95"))


def _state(trial: dict, best: str) -> str:
    if trial["run_name"] == best:
        return "selected"
    if trial["score"] is None:
        statuses = sorted(set(trial["statuses"]) - {"completed"})
        return "stopped early (ASHA)" if trial.get("stopped_early") else ", ".join(statuses)
    return ""


def tune_markdown(selection: dict, figure: str | None = None) -> list[str]:
    """The tune's Markdown: the selection line and the search table (and its figure)."""
    m = METRICS[selection["metric"]]
    keys = _keys(selection)
    final = selection.get("final_experiences")
    where = "" if final is None else f" on experiences {', '.join(map(str, final))} of the stream"
    seeds = ",".join(map(str, selection["final_seeds"]))
    lines = [
        f"#### {selection['experiment']}: hyperparameter search", "",
        chosen_text(selection) + f". The final runs are this setting with seeds {seeds}{where}.",
        "",
        "| trial | " + " | ".join(f"`{k}`" for k in keys) + f" | seeds | validation {m.title} | |",
        "|---|" + "---|" * len(keys) + "---|---|---|",
    ]  # fmt: skip
    for trial in selection["trials"]:
        chosen = trial["run_name"] == selection["best_trial"]
        score = cell(_stat(trial))
        values = [yaml_text(trial["values"][k]) for k in keys]
        n = sum(s is not None for s in trial["scores"])
        row = [trial["run_name"], *values, str(n), f"**{score}**" if chosen else score,
               _state(trial, selection["best_trial"])]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if figure is not None:
        lines += [f"![{Path(figure).stem}]({figure})", ""]
    return lines


def tune_latex(selection: dict, label: str = "tab:") -> list[str]:
    """The search table as a booktabs table."""
    m = METRICS[selection["metric"]]
    keys = _keys(selection)
    name = selection["experiment"]
    key = re.sub(r"[^A-Za-z0-9:._-]", "-", f"{name}-search")
    lines = [
        r"\begin{table}[t]", r"\centering", r"\small",
        r"\begin{tabular}{l" + "r" * len(keys) + "rc}", r"\toprule",
        "trial & " + " & ".join(r"\texttt{" + tex_escape(k) + "}" for k in keys)
        + rf" & $n$ & validation {tex_escape(m.title)} \\", r"\midrule",
    ]  # fmt: skip
    for trial in selection["trials"]:
        st = _stat(trial)
        number = (
            "---"
            if st.mean is None
            else f"{st.mean:.3f}" + (rf" \pm {st.std:.3f}" if st.std is not None else "")
        )
        number = number if number == "---" else f"${number}$"
        if trial["run_name"] == selection["best_trial"]:
            number = rf"{{\boldmath{number}}}"
        values = [tex_escape(yaml_text(trial["values"][k])) for k in keys]
        lines.append(" & ".join([tex_escape(trial["run_name"]), *values, str(st.n), number])
                     + r" \\")  # fmt: skip
    chosen = chosen_text(selection)
    caption = tex_escape(chosen[0].upper() + chosen[1:])
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{tex_escape(name)}: hyperparameter search (mean $\pm$ std over each "
              rf"trial's seeds; bold: selected). {caption}.}}",
              rf"\label{{{label}{key}}}", r"\end{table}", ""]  # fmt: skip
    return lines


def tune_figure(selection: dict):
    """The validation score against each searched parameter (one panel each), the selected
    trial marked; error bars: 95% CI over a trial's seeds."""
    import matplotlib.pyplot as plt

    m = METRICS[selection["metric"]]
    keys = _keys(selection)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.0), squeeze=False)
    trials = [t for t in selection["trials"] if t["score"] is not None]
    for ax, key in zip(axes[0], keys, strict=True):
        values = [t["values"][key] for t in trials]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            xs = [float(v) for v in values]
            spec = selection["space"][key]
            log = (isinstance(spec, dict) and "loguniform" in spec) or (
                min(xs) > 0 and max(xs) / min(xs) >= 10
            )
            if log:
                ax.set_xscale("log")
        else:
            labels = list(dict.fromkeys(yaml_text(v) for v in values))
            xs = [labels.index(yaml_text(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            ax.margins(x=0.25)
        errors = [t.get("ci95") or 0 for t in trials]
        ax.errorbar(xs, [t["score"] for t in trials], yerr=errors, fmt="o", color="tab:blue",
                    ecolor="tab:gray", capsize=2, markersize=4)  # fmt: skip
        for x, t in zip(xs, trials, strict=True):
            if t["run_name"] == selection["best_trial"]:
                ax.plot([x], [t["score"]], marker="*", color="tab:red", markersize=12,
                        linestyle="none", label="selected")  # fmt: skip
        ax.set_xlabel(key)
        ax.set_ylabel(f"validation {m.label}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=8)
    better = "higher" if m.higher_is_better else "lower"
    bars = "; bars: 95% CI over seeds" if any(t.get("ci95") for t in trials) else ""
    fig.suptitle(f"{selection['experiment']}: search ({better} is better{bars})", fontsize=10)
    fig.tight_layout()
    return fig
