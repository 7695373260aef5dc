"""Reports: finished runs aggregated into tables (Markdown, LaTeX, CSV) and figures."""

from clstm.report.collect import (  # noqa: F401
    BIBTEX,
    DEFAULT_COLUMNS,
    METRICS,
    Collected,
    Report,
    RunGroup,
    Stat,
    _best,
    _columns,
    _zero_note,
    collect,
    csv_text,
    is_regression,
    latex,
    markdown,
    recorded_cpu,
    summarize_values,
    text_table,
    write_report,
)
