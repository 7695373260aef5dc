"""Keep the files behind a report (``clstm report ... --archive DIR``).

Raw run folders hold checkpoints, TensorBoard events and logs, and are not meant to be committed;
a report's numbers are then only as traceable as the folders someone kept. ``--archive DIR``
copies, for every completed run the report averaged, the three small files the report reads —
``config.yaml`` (the resolved config), ``metrics.json`` (accuracy or error matrices and their
summaries) and ``meta.json`` (command, versions, git commit, host, CPU, timings) — into
``DIR/<experiment>/<run name>/<identity>/seed<k>/``: one folder per row of the report and seed,
a few kilobytes a run. ``clstm report DIR`` then regenerates the same tables and figures from the
archive alone, and a later report can read the archive beside new raw runs (a run found in both
counts once, :func:`clstm.report.collect`), so that seeds run in different sessions or on different
machines accumulate in one committed folder.

Nothing archived is ever replaced: a file already in the archive with other content (another run
with the same config and seed) is refused before anything is copied. Runs that did not complete
are not archived (the report lists them from where it read them).
"""

from __future__ import annotations

from pathlib import Path

from clstm.errors import ConfigError
from clstm.run.files import CONFIG, META, METRICS, write_text_atomic

#: the files of a run folder that are archived (those :func:`clstm.report.collect` reads, and the
#: provenance)
ARCHIVED = (CONFIG, METRICS, META)


def archive_runs(collected, dest: str | Path) -> tuple[int, int]:
    """Copy every completed run of ``collected`` (:func:`clstm.report.collect`) into ``dest``.

    Returns ``(copied, already there)``, counted in runs. Raises :class:`ConfigError` naming
    the file when ``dest`` holds a different file where one would be copied; nothing is copied
    then.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ConfigError(
            f"the archive {dest} is a file; give a folder",
            cli=f"report --archive {dest} is a file; give a folder",
        )
    plan: list[tuple[Path, Path]] = []  # (source file, archived file), only files to copy
    present = 0
    for groups in collected.values():
        for group in groups.values():
            for result in group.completed:
                seed = result.metrics["seed"]
                source = group.paths[seed]
                target = dest / group.experiment / group.run_name / group.identity / f"seed{seed}"
                files = [
                    (source / name, target / name)
                    for name in ARCHIVED
                    if (source / name).exists()
                    and not ((target / name).exists() and _same_file(source / name, target / name))
                ]  # fmt: skip
                for src, dst in files:
                    if dst.exists():  # another file than the source's
                        raise ConfigError(
                            f"the archive already holds another run at {dst} (same experiment, "
                            f"run name, config and seed as {src.parent}); archive into another "
                            "folder or remove that run from it"
                        )
                present += not files
                plan += files
    for src, dst in plan:
        write_text_atomic(dst, src.read_text())
    return len({dst.parent for _, dst in plan}), present


def _same_file(a: Path, b: Path) -> bool:
    """The same file, or identical content (a copy already archived)."""
    return a.resolve() == b.resolve() or a.read_bytes() == b.read_bytes()


def same_run(a: Path, b: Path) -> bool:
    """Two run folders holding one run: identical ``metrics.json`` (or, for runs that did not
    complete, identical ``meta.json``)."""
    for name in (METRICS, META):
        if (a / name).exists() or (b / name).exists():
            try:
                return (a / name).read_bytes() == (b / name).read_bytes()
            except OSError:
                return False
    return False
