"""The LaTeX tables of ``clstm report`` (``report.tex``): one booktabs table per experiment."""

from __future__ import annotations

import re

from clstm.metrics import fixed
from clstm.report.table import RunGroup, Stat, best_per_column, columns, sections, zero_note


def tex_escape(text: str) -> str:
    """Text safe inside LaTeX (run names hold ``_``, ``~``, ``[`` ...)."""
    marker = "\x00"
    text = text.replace("\\", marker)
    for a, b in (("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("$", r"\$"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
                 ("^", r"\textasciicircum{}")):  # fmt: skip
        text = text.replace(a, b)
    return text.replace(marker, r"\textbackslash{}")


def _tex_number(stat: Stat) -> str:
    """``$-0.528 \\pm 0.012$``: math mode, so a negative number gets a real minus sign."""
    text = fixed(stat.mean) + (rf" \pm {stat.std:.3f}" if stat.std is not None else "")
    return f"${text}$"


def latex(
    collected: dict[str, dict[str, RunGroup]],
    keys=None,
    caption: str | None = None,
    label: str = "tab:",
    published=(),
) -> str:
    """One booktabs table per experiment, ready for ``\\input``.

    Columns: ``keys`` where the runs' target kind has them (default: the kind's default columns,
    ACC, BWT, forgetting and learning accuracy for accuracies); a column that is 0 in every run
    is omitted with a footnote. An experiment whose runs are of several families of target kinds
    gets a table for each (:func:`clstm.report.table.sections`). Cells are mean ± std in math
    mode (a true minus sign); bold marks the best mean and every row whose 95% CI overlaps it.
    ``caption`` may contain ``{experiment}``; the table's label is ``label`` + the experiment's
    name. ``published`` (:func:`clstm.report.published.load_published`) adds the paper's values
    as rows below the runs'.
    """
    out = []
    for experiment, groups in collected.items():
        for title, kind, rows in sections(experiment, groups):
            out += _table(title, kind, rows, keys, caption, label, published, experiment)
    return "\n".join(out)


def _table(title, kind, groups, keys, caption, label, published, experiment) -> list[str]:
    from clstm.report.published import latex_rows

    shown, omitted = columns(groups, kind, keys, title)
    cols = "l" + "r" + "c" * len(shown)
    key = re.sub(r"[^A-Za-z0-9:._-]", "-", title)  # \\label takes no escapes
    if caption is None:
        text = (r"{experiment}: mean $\pm$ std over seeds ($n$ seeds); bold: best mean and "
                r"every method whose 95\% CI overlaps it.")  # fmt: skip
    else:  # the user's text, as text: LaTeX's special characters escaped
        text = tex_escape(caption)
    text = text.replace("{experiment}", tex_escape(title)).replace(
        tex_escape("{experiment}"), tex_escape(title)
    )
    out = [
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\caption{{{text}}}", rf"\label{{{label}{key}}}",
        rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
        " & ".join(["Method", "$n$", *(tex_escape(m.title) for m in shown)]) + r" \\",
        r"\midrule",
    ]  # fmt: skip
    best = best_per_column(groups, shown)
    for name, g in groups.items():
        cells = []
        for m in shown:
            st = g.stat(m.key)
            if st.mean is None:
                cells.append("--")
                continue
            number = _tex_number(st)
            cells.append(rf"{{\boldmath{number}}}" if name in best[m.key] else number)
        flag = r"$^\dagger$" if g.not_completed else ""
        row = [f"{tex_escape(name)}{flag}", str(len(g.completed)), *cells]
        out.append(" & ".join(row) + r" \\")
    out += latex_rows(published, experiment, [m.key for m in shown], tex_escape)
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = []
    if any(g.not_completed for g in groups.values()):
        notes.append(r"$^\dagger$ some seeds did not complete (see the CSV).")
    if omitted:
        notes.append(tex_escape(zero_note(omitted)))
    if notes:
        out.append(r"\\[2pt]{\footnotesize " + " ".join(notes) + "}")
    out += [r"\end{table}", ""]
    return out
