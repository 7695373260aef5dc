"""What a run produced, defined once: :class:`RunResult`, and its ``metrics.json``.

A run's outcome is one object. :func:`result_of` makes it from the matrices the run measured;
:func:`write_result` writes it (``metrics.json`` and one CSV file per matrix) and
:func:`load_run` reads it back: what the CLI's summary, a sweep's rows and the report read is this
object or its ``metrics.json``. Its target kind (:mod:`clstm.targets`) says which matrices it
holds (accuracies, or errors) and how they are summarised. Imports numpy only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clstm.errors import OutputError
from clstm.metrics import MEASURES
from clstm.run.files import (
    CURVES,
    METRICS,
    PREQUENTIAL,
    matrix_csv_name,
    write_json_atomic,
    write_text_atomic,
)
from clstm.run.rundir import read_json_file
from clstm.targets import SEQUENCE, kind_named


@dataclass
class RunResult:
    """What a run produced. ``accuracy_matrix[i, j]``: accuracy on experience j after training i.

    ``metrics`` is its ``metrics.json``. Runs whose target kind measures errors (regression) have
    no accuracy: ``accuracy_matrix`` is None and ``error_matrices`` maps ``"mse"`` and ``"mae"``
    to ``(initial row or None, E)``.
    """

    run_dir: Path
    status: str
    metrics: dict
    accuracy_matrix: np.ndarray | None
    initial_accuracy: np.ndarray | None
    experience_names: list[str]
    error: str | None = None
    target: str = SEQUENCE.name
    error_matrices: dict | None = None

    @property
    def kind(self):
        """The :class:`clstm.targets.TargetKind` of the run's benchmark."""
        return kind_named(self.target)

    def matrix(self, measure: str) -> tuple[np.ndarray | None, np.ndarray]:
        """``(initial row or None, matrix)`` of ``measure`` (``accuracy``, ``mse``, ``mae``)."""
        if measure == "accuracy":
            return self.initial_accuracy, self.accuracy_matrix
        return (self.error_matrices or {})[measure]

    def value(self, key: str) -> float | None:
        """A summary of ``metrics.json`` (:data:`clstm.metrics.METRICS`), None if undefined."""
        return self.metrics.get(key)

    def row(self) -> dict:
        """What a sweep's ``sweep.json`` keeps of the run (its kind's summaries)."""
        return {
            "status": self.status, "error": self.error, "run_dir": str(self.run_dir),
            "target": self.target, **{k: self.value(k) for k in self.kind.sweep_keys},
            "wall_time_s": self.value("wall_time_s"),
        }  # fmt: skip


def full_result(metric, n_experiences: int):
    """``(initial, R)`` of a matrix metric, ``R`` always ``T x T`` (NaN where never measured)."""
    if not metric.measured:  # stopped before evaluating anything
        return None, np.full((n_experiences,) * 2, np.nan)
    initial, R = metric.result()
    if R.shape[0] != n_experiences:  # stopped before evaluating anything
        R = np.full((n_experiences,) * 2, np.nan)
    return initial, R


def result_of(
    cfg,
    bench,
    *,
    run_dir,
    run_name,
    status,
    error,
    matrices,
    trained,
    wall,
    continual=None,
    online=None,
) -> RunResult:
    """The outcome of a run of ``cfg`` on ``bench``: ``matrices`` maps a stream (``test``, and
    ``valid`` when the benchmark has one) to ``{measure: matrix metric}`` (None: nothing was
    measured, e.g. a run stopped before its first evaluation); ``trained`` experiences were
    trained in ``wall`` seconds."""
    kind, n = bench.kind, bench.n_experiences
    unmeasured = (None, np.full((n, n), np.nan))

    def results(stream):
        metrics = (matrices or {}).get(stream)
        if metrics is None:
            return {m: unmeasured for m in kind.measures}
        return {m: full_result(metrics[m], n) for m in kind.measures}

    test = results("test")
    completed = status == "completed"
    tested = matrices is None or "test" in matrices  # eval.test: false - the validation only
    metrics = {
        "experiment": cfg.name,
        "strategy": cfg.strategy.name,
        "seed": cfg.seed,
        "status": status,
        "error": error,
        "scenario": bench.scenario_name,
        "target": bench.target,
        "experience_names": list(bench.experience_names),
        "experiences_trained": trained,
        **kind.record(test, completed and tested),
        "wall_time_s": round(wall, 3),
        "run_name": run_name,
    }
    if "valid" in (matrices or {}):
        metrics["validation"] = kind.record(results("valid"), completed)
    if not tested:
        metrics["test_evaluated"] = False
    if continual is not None:
        _add_curves(metrics, continual, cfg.eval, kind, completed)
    if online is not None:
        _add_prequential(metrics, online, cfg.online, bench.experience_names, completed)
    accuracy = test.get("accuracy")
    return RunResult(
        run_dir=Path(run_dir),
        status=status,
        metrics=metrics,
        accuracy_matrix=accuracy[1] if accuracy else None,
        initial_accuracy=accuracy[0] if accuracy else None,
        experience_names=list(bench.experience_names),
        error=error,
        target=bench.target,
        error_matrices=None if accuracy else test,
    )


def _add_curves(metrics: dict, continual, options, kind, completed: bool) -> None:
    """The continual evaluation's curves and their summaries (:func:`clstm.metrics.
    continual_record`, of the kind's first measure): the test stream's at the top level (and its
    gaps under ``stability_gaps``), the validation stream's under ``validation``."""
    from clstm.metrics import CONTINUAL_KEYS, continual_record

    curves, ends = continual.curves(), continual.boundaries()
    metrics["curves"] = {"boundaries": ends, "streams": curves}
    measure = kind.measures[0]
    higher = MEASURES[measure].higher_is_better
    keys = CONTINUAL_KEYS["accuracy" if higher else "errors"]
    for stream, curve in curves.items():
        record = continual_record(
            curve[measure], ends, options.wf_window, options.tolerance, higher
        )
        if not completed:
            record = {k: None for k in keys}
        target = metrics if stream == "test" else metrics.setdefault("validation", {})
        target.update({k: record[k] for k in keys})
        if stream == "test":
            metrics["stability_gaps"] = record.get("gaps")


def _add_prequential(metrics: dict, online, options, names, completed: bool) -> None:
    """The online stream's prequential scores: every incoming batch's (``prequential.curve``),
    each measure's over the stream and per experience, and ``preq_<measure>`` at the top level
    (None unless the run completed)."""
    from clstm.plugins.online import SHORT

    summary = online.summary(names)
    curve: dict = {"step": [], "experience": [], "seen": []}
    for step, e, seen, measure, total, count in online.records:
        if measure == online.kind.measures[0]:
            curve["step"].append(step)
            curve["experience"].append(e)
            curve["seen"].append(seen)
            curve.setdefault("count", []).append(count)
        curve.setdefault(measure, []).append(total / count if count else None)
    metrics["prequential"] = {
        "batch": options.batch, "boundaries": options.boundaries, **summary, "curve": curve,
    }  # fmt: skip
    for measure, values in summary.items():
        metrics[f"preq_{SHORT[measure]}"] = values["overall"] if completed else None


def prequential_csv(metrics: dict) -> str:
    """``prequential.csv``: one row per incoming batch and measure, scored before training."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "experience", "sequences_seen", "measure", "value", "count"])
    names, curve = metrics["experience_names"], metrics["prequential"]["curve"]
    measures = [m for m in MEASURES if m in curve]
    for i, step in enumerate(curve["step"]):
        for measure in measures:
            value = curve[measure][i]
            text = "" if value is None else f"{value:.6f}"
            writer.writerow([step, names[curve["experience"][i]], curve["seen"][i], measure, text,
                             curve["count"][i]])  # fmt: skip
    return buffer.getvalue()


def curves_csv(metrics: dict) -> str:
    """``curves.csv``: one row per evaluation of one experience of one stream."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["iteration", "experience_trained", "experience_tested", "stream", "measure",
                     "value"])  # fmt: skip
    names = metrics["experience_names"]
    for stream, by_measure in metrics["curves"]["streams"].items():
        for measure, c in by_measure.items():
            for it, trained, tested, value in zip(c["iteration"], c["trained"], c["tested"],
                                                  c["value"], strict=True):  # fmt: skip
                writer.writerow([it, names[trained], names[tested], stream, measure,
                                 f"{value:.6f}"])  # fmt: skip
    return buffer.getvalue()


def write_result(result: RunResult, matrices: bool = True) -> None:
    """Write ``metrics.json`` and (with ``matrices``) the CSV file of every matrix into the run
    directory."""
    write_json_atomic(result.run_dir / METRICS, result.metrics)
    if result.metrics.get("curves"):
        write_text_atomic(result.run_dir / CURVES, curves_csv(result.metrics))
    if result.metrics.get("prequential"):
        write_text_atomic(result.run_dir / PREQUENTIAL, prequential_csv(result.metrics))
    for measure in result.kind.measures if matrices else ():
        initial, matrix = result.matrix(measure)
        write_text_atomic(
            result.run_dir / matrix_csv_name(measure),
            matrix_csv(result.experience_names, matrix, initial),
        )


def load_run(run_dir: str | Path) -> RunResult:
    """A :class:`RunResult` read back from a finished run directory (OutputError if unreadable)."""
    run_dir = Path(run_dir)
    return result_from_metrics(run_dir, read_json_file(run_dir / METRICS))


def result_from_metrics(run_dir: str | Path, m: dict) -> RunResult:
    """The :class:`RunResult` whose ``metrics.json`` is ``m`` (OutputError if malformed)."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS

    def array(value):
        return np.array(value, dtype=float) if value is not None else None

    try:
        kind = kind_named(m.get("target", SEQUENCE.name))
        errors = None
        if not kind.accuracy:
            errors = {
                k: (array(m[MEASURES[k].initial_key]), array(m[MEASURES[k].matrix_key]))
                for k in kind.measures
            }
        return RunResult(
            run_dir=run_dir,
            status=m["status"],
            metrics=m,
            accuracy_matrix=array(m["accuracy_matrix"]),
            initial_accuracy=array(m["initial_accuracy"]),
            experience_names=list(m["experience_names"]),
            error=m["error"],
            target=kind.name,
            error_matrices=errors,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OutputError(f"cannot read {path} (missing or malformed {exc})") from None


def matrix_csv(names: Sequence[str], R: np.ndarray, initial: np.ndarray | None) -> str:
    """A matrix as CSV: a header of experience names, the initial row, one row per experience."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trained_on", *names])
    rows = ([("(initial)", initial)] if initial is not None else []) + list(
        zip(names, R, strict=True)
    )
    for label, row in rows:
        writer.writerow([label, *("" if np.isnan(v) else f"{v:.6f}" for v in row)])
    return buffer.getvalue()
