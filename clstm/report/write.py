"""``clstm report``: aggregate finished runs into paper-ready tables and figures.

:func:`write_report` finds the runs (:mod:`clstm.report.collect`), renders their tables
(:mod:`clstm.report.table`) as Markdown, LaTeX and CSV and draws the figures
(:mod:`clstm.report.figures`), optionally beside published values (:mod:`clstm.report.published`)
and keeping the files behind them (:mod:`clstm.report.archive`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clstm.errors import ConfigError, OutputError
from clstm.metrics import METRICS
from clstm.report.collect import collect
from clstm.report.latex import latex
from clstm.report.markdown import csv_text, markdown, text_table
from clstm.run.files import write_text_atomic

#: the files of a report, in its output folder (the Markdown may go elsewhere)
REPORT_MD, REPORT_TEX, REPORT_CSV = "report.md", "report.tex", "report.csv"

BIBTEX = """@software{clstm,
  title   = {clstm: continual learning with recurrent sequence models on Avalanche},
  author  = {{clstm developers}},
  year    = {2026},
  version = {VERSION},
  note    = {Built on Avalanche (Carta et al., 2023)}
}"""


@dataclass
class Report:
    """What :func:`write_report` wrote and found."""

    markdown_path: Path
    table: str  # the main table as plain text (what `clstm report` prints)
    skipped: list[str]  # runs that could not be read, each with the reason
    archived: tuple[int, int] | None = None  # with archive: (runs copied, runs already there)


def parse_columns(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"acc,bwt,fwt"`` -> the metric keys, checked; ``None`` -> None (each table shows its
    target kind's default columns)."""
    if text is None:
        return None
    keys = [k.strip() for k in (text.split(",") if isinstance(text, str) else text) if k.strip()]
    known = list(METRICS)
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
    plain-text tables (default: the target kind's, ACC, BWT, forgetting and learning accuracy
    for accuracies; Markdown and CSV hold all); ``tex_caption`` (``{experiment}`` is replaced)
    and ``tex_label`` (a prefix to the experiment's name) go into each LaTeX table. ``archive``
    copies the files behind every completed run into that folder
    (:func:`clstm.report.archive.archive_runs`) before writing; ``published``, a file of
    published values (:mod:`clstm.report.published`), adds a comparison under each experiment it
    names.
    """
    _refuse_empty(out=out, markdown=markdown_path, archive=archive, published=published)
    keys = parse_columns(columns)
    after, entries = {}, []
    if published is not None:
        from clstm.report.published import comparisons, load_published

        entries = load_published(published)  # a faulty file is refused before anything is read
    collected = collect(*results_dirs)
    if published is not None:
        after = comparisons(collected, entries)
    from clstm.report.tuned import find_tunes, tune_latex, tune_markdown

    tunes = find_tunes(*results_dirs, skipped=collected.skipped)
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
    # every table first: a column that applies to no table is refused before anything is written
    tex = latex(collected, keys, tex_caption, tex_label, entries)
    tex += "".join("\n" + "\n".join(tune_latex(sel, tex_label)) for _, sel in tunes)
    from clstm.report.continual import continual_latex, continual_markdown

    tex += "".join("\n" + "\n".join(lines) for e, groups in collected.items()
                   if (lines := continual_latex(e, groups, tex_label)))  # fmt: skip
    table = text_table(collected, keys)
    archived = None
    if archive is not None:
        from clstm.report.archive import archive_runs

        archived = archive_runs(collected, archive)
    from clstm.report.figures import figures  # matplotlib's import only where drawn

    made = _written(out, lambda: figures(collected, out)) if with_figures else {}
    tune_figures = _written(out, lambda: _tune_figures(tunes, out)) if with_figures else {}
    md_path = Path(markdown_path) if markdown_path else out / REPORT_MD
    relative = {
        e: [os.path.relpath(out / f, md_path.parent) for f in files] for e, files in made.items()
    }
    continual = _written(out, lambda: _continual_figures(collected, out)) if with_figures else {}
    for experiment, groups in collected.items():  # continual evaluation, under its tables
        figure = continual.get(experiment)
        figure = os.path.relpath(out / figure, md_path.parent) if figure else None
        lines = continual_markdown(experiment, groups, figure)
        if lines:
            after.setdefault(experiment, []).extend(lines)
    for folder, selection in tunes:  # under the experiment's tables (its final runs)
        figure = tune_figures.get(folder)
        figure = os.path.relpath(out / figure, md_path.parent) if figure else None
        after.setdefault(selection["experiment"], []).extend(tune_markdown(selection, figure))
    header = f"Regenerate with:\n\n```bash\n{command}\n```\n\n" if command else ""
    texts = {md_path: header + markdown(collected, relative, after), out / REPORT_TEX: tex,
             out / REPORT_CSV: csv_text(collected)}  # fmt: skip
    for path, text in texts.items():
        _written(path, lambda path=path, text=text: write_text_atomic(path, text))
    return Report(md_path, table, collected.skipped, archived)


def _continual_figures(collected, out: Path) -> dict[str, str]:
    """``<experiment>_continual.png`` (and PDF) per experiment with curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clstm.report.continual import stability_figure
    from clstm.report.figures import save_figure

    made = {}
    for experiment, groups in collected.items():
        fig = stability_figure(experiment, groups)
        if fig is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        save_figure(fig, out / f"{experiment}_continual")
        plt.close(fig)
        made[experiment] = f"{experiment}_continual.png"
    return made


def _tune_figures(tunes, out: Path) -> dict[Path, str]:
    """``<experiment>_search.png`` (and PDF) per tune; tune folder -> PNG name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clstm.report.figures import save_figure
    from clstm.report.tuned import tune_figure

    made = {}
    out.mkdir(parents=True, exist_ok=True)
    names = [sel["experiment"] for _, sel in tunes]
    for i, (folder, selection) in enumerate(tunes):
        stem = selection["experiment"] + (f"_{i}" if names.count(selection["experiment"]) > 1
                                          else "")  # fmt: skip
        fig = tune_figure(selection)
        save_figure(fig, out / f"{stem}_search")
        plt.close(fig)
        made[folder] = f"{stem}_search.png"
    return made


def _refuse_empty(**paths) -> None:
    """An empty path option (``--out ''``) is refused, not read as the current folder."""
    for option, value in paths.items():
        if value is not None and not str(value).strip():
            raise ConfigError(
                f"{option} is empty; give a path, or leave it out",
                cli=f"report --{option} is empty; give a path, or leave it out",
            )


def _written(path: Path, write):
    """``write()``, a failure to write (disk full, read-only) one line naming ``path``."""
    try:
        return write()
    except OSError as exc:
        where = exc.filename or path
        raise OutputError(
            f"cannot write the report's {path.name if path.suffix else 'figures'} to {where} "
            f"({exc.strerror or exc}); free space or choose another out",
            cli=f"cannot write the report's {path.name if path.suffix else 'figures'} to {where} "
            f"({exc.strerror or exc}); free space or choose another --out",
        ) from None
