"""The LaTeX tables of ``clstm report`` (``report.tex``): one booktabs table per experiment."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clstm.report.collect import RunGroup, Stat


def _tex_escape(text: str) -> str:
    """Text safe inside LaTeX (run names hold ``_``, ``~``, ``[`` ...)."""
    marker = "\x00"
    text = text.replace("\\", marker)
    for a, b in (("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("$", r"\$"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
                 ("^", r"\textasciicircum{}")):  # fmt: skip
        text = text.replace(a, b)
    return text.replace(marker, r"\textbackslash{}")


def fixed(value: float, digits: int = 3, plus: bool = False) -> str:
    """``value`` to ``digits`` decimals (with ``plus``, signed: ``+0.012``), without a negative
    zero: a mean of -0.0002 prints as ``0.000`` (``+0.000``), not ``-0.000`` (a minus sign on a
    printed zero). Python 3.11's ``z`` format option does this; clstm supports 3.10."""
    text = f"{value:{'+' if plus else ''}.{digits}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = ("+" if plus else "") + text[1:]
    return text


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

    Columns: ``keys`` (default ACC, BWT, forgetting, learning accuracy); a column that is 0 in
    every run is omitted with a footnote. Cells are mean ± std in math mode (a true minus sign);
    bold marks the best mean and every row whose 95% CI overlaps it. ``caption`` may contain
    ``{experiment}``; the table's label is ``label`` + the experiment's name. ``published``
    (:func:`clstm.report.published.load_published`) adds the paper's values as rows below the runs'.
    """
    from clstm.report.collect import DEFAULT_COLUMNS, _best, _columns, _zero_note
    from clstm.report.published import latex_rows

    out = []
    for experiment, groups in collected.items():
        columns, omitted = _columns(groups, keys or DEFAULT_COLUMNS)
        cols = "l" + "r" + "c" * len(columns)
        key = re.sub(r"[^A-Za-z0-9:._-]", "-", experiment)  # \\label takes no escapes
        text = (caption or "{experiment}: mean $\\pm$ std over seeds ($n$ seeds); bold: best "
                "mean and every method whose 95\\% CI overlaps it.").replace(
            "{experiment}", _tex_escape(experiment))  # fmt: skip
        out += [
            r"\begin{table}[t]", r"\centering", r"\small",
            rf"\caption{{{text}}}", rf"\label{{{label}{key}}}",
            rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
            "Method & $n$ & " + " & ".join(_tex_escape(t) for _, t, _ in columns) + r" \\",
            r"\midrule",
        ]  # fmt: skip
        best = {key: _best(groups, key, higher) for key, _, higher in columns}
        for name, g in groups.items():
            cells = []
            for key, _, _ in columns:
                st = g.stat(key)
                if st.mean is None:
                    cells.append("--")
                    continue
                number = _tex_number(st)
                cells.append(rf"{{\boldmath{number}}}" if name in best[key] else number)
            flag = r"$^\dagger$" if g.not_completed else ""
            out.append(
                f"{_tex_escape(name)}{flag} & {len(g.completed)} & " + " & ".join(cells) + r" \\"
            )
        out += latex_rows(published, experiment, [k for k, _, _ in columns], _tex_escape)
        out += [r"\bottomrule", r"\end{tabular}"]
        notes = []
        if any(g.not_completed for g in groups.values()):
            notes.append(r"$^\dagger$ some seeds did not complete (see the CSV).")
        if omitted:
            notes.append(_tex_escape(_zero_note(omitted)))
        if notes:
            out.append(r"\\[2pt]{\footnotesize " + " ".join(notes) + "}")
        out += [r"\end{table}", ""]
    return "\n".join(out)
