"""Reports: finished runs aggregated into tables (Markdown, LaTeX, CSV) and figures.

- :mod:`~clstm.report.collect`: the runs below the given folders, their seeds grouped by identity;
- :mod:`~clstm.report.table`: the table model (rows, statistics, columns from the metric
  catalogue, the best values, number format) every renderer reads;
- :mod:`~clstm.report.markdown` and :mod:`~clstm.report.latex`: the renderings;
- :mod:`~clstm.report.figures`: accuracy (or error) curves and mean matrices;
- :mod:`~clstm.report.published`: published values beside the rows;
- :mod:`~clstm.report.archive`: the files behind a report, kept;
- :mod:`~clstm.report.write`: :func:`write_report`, all of the above (``clstm report``).
"""

from clstm.report.collect import Collected, collect, recorded_cpu
from clstm.report.latex import latex
from clstm.report.markdown import csv_text, markdown, text_table
from clstm.report.table import RunGroup, Stat, summarize_values
from clstm.report.write import BIBTEX, Report, parse_columns, write_report

__all__ = [
    "BIBTEX", "Collected", "Report", "RunGroup", "Stat", "collect", "csv_text", "latex",
    "markdown", "parse_columns", "recorded_cpu", "summarize_values", "text_table", "write_report",
]  # fmt: skip
