"""What a run records about its results: ``metrics.json``'s scores, the matrix CSV files and the
TensorBoard HParams session, from the accuracy matrix (or, for regression runs, the error
matrices) measured by :mod:`clstm.plugins.accuracy_matrix` / :mod:`clstm.plugins.error_matrix`.
Used by :mod:`clstm.run.runner`. Imports numpy only (torch and Avalanche when writing HParams).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import numpy as np

from clstm import metrics as clm
from clstm.config import to_dict


def full_result(metric, n_experiences: int):
    """``(initial, R)`` with ``R`` always ``T x T`` (NaN where never measured)."""
    if not metric.measured:  # stopped before evaluating anything
        return None, np.full((n_experiences,) * 2, np.nan)
    initial, R = metric.result()
    if R.shape[0] != n_experiences:  # stopped before evaluating anything
        R = np.full((n_experiences,) * 2, np.nan)
    return initial, R


def error_results(matrices: dict, n_experiences: int) -> dict | None:
    """``{"mse": (initial, E), "mae": (initial, E)}`` of a regression run, else None."""
    if "test_mae" not in matrices:
        return None
    return {
        "mse": full_result(matrices["test"], n_experiences),
        "mae": full_result(matrices["test_mae"], n_experiences),
    }


def matrix_summary(status, R, initial) -> dict:
    """The accuracy matrix, initial row and every metric (``None`` unless the run completed).

    A completed run with only the last row measured (``joint``: no intermediate models) gets ACC
    and the final accuracies; the metrics that need intermediate rows stay ``None``.
    """
    complete = status == "completed" and not np.isnan(R).any()
    summary = clm.summarize(R, initial) if complete else {}
    if status == "completed" and not complete and not np.isnan(R[-1]).any():
        # average_accuracy reads only the last row; the unmeasured rows do not enter it.
        acc = clm.average_accuracy(np.nan_to_num(R))
        summary = {"acc": acc, "per_experience": {"final_accuracy": R[-1].tolist()}}
    keys = ("acc", "bwt", "fwt", "forgetting", "forgetting_learned", "learning_accuracy")
    return {
        "accuracy_matrix": R.tolist(),
        "initial_accuracy": initial.tolist() if initial is not None else None,
        **{k: summary.get(k) for k in keys},
        "per_experience": summary.get("per_experience"),
    }


def write_hparams(writer, cfg, initial, R, regression: bool = False) -> None:
    """TensorBoard HParams of a completed run, in the run's own TensorBoard run.

    Hyperparameters: :func:`clstm.run.logging.run_hparams` (strategy, benchmark and its variant or
    datasets, scenario, seed, the strategy's, training and model options); metrics: the final
    ``cl/ACC``, ``cl/BWT``, ``cl/forgetting`` and ``cl/learning_accuracy`` scalars already
    logged (the HParams dashboard reads their last values).
    """
    from clstm.run.logging import HPARAM_METRICS, run_hparams, write_run_hparams

    if regression:  # R holds MSEs
        errors = error_summary("completed", {"mse": (initial, R)})
        final = {f"cl/mse_{k}": errors.get(f"mse_{k}") for k in
                 ("final", "increase", "forgetting", "learning")}  # fmt: skip
        write_run_hparams(writer, run_hparams(to_dict(cfg)),
                          {k: v for k, v in final.items() if v is not None})  # fmt: skip
        return
    summary = matrix_summary("completed", R, initial)
    keys = {"cl/ACC": "acc", "cl/BWT": "bwt", "cl/forgetting": "forgetting",
            "cl/learning_accuracy": "learning_accuracy"}  # fmt: skip
    final = {tag: summary.get(keys[tag]) for tag in HPARAM_METRICS}
    write_run_hparams(writer, run_hparams(to_dict(cfg)), {k: v for k, v in final.items()
                                                          if v is not None})  # fmt: skip


def error_summary(status, errors: dict) -> dict:
    """Each error matrix (``error_matrix_<m>``), its initial row and summaries (``<m>_final``,
    ``<m>_learning``, ``<m>_increase``, ``<m>_forgetting``, ``<m>_forward_change``; ``None``
    unless the run completed), for every measure ``m`` of ``errors`` (regression runs)."""
    out: dict = {}
    names = {
        "final_error": "final", "learning_error": "learning", "error_increase": "increase",
        "error_forgetting": "forgetting", "forward_error_change": "forward_change",
    }  # fmt: skip
    for m, (initial, E) in errors.items():
        complete = status == "completed" and not np.isnan(E).any()
        summary = clm.summarize_errors(E, initial) if complete else {}
        if status == "completed" and not complete and not np.isnan(E[-1]).any():
            summary = {"final_error": clm.average_error(np.nan_to_num(E))}  # joint: last row only
        out[f"error_matrix_{m}"] = E.tolist()
        out[f"initial_error_{m}"] = initial.tolist() if initial is not None else None
        out |= {f"{m}_{short}": summary.get(key) for key, short in names.items()}
        out[f"per_experience_{m}"] = summary.get("per_experience")
    return out


def metrics_json(cfg, bench, status, error, R, initial, trained, wall, errors=None) -> dict:
    """metrics.json: accuracies and their summaries, or for regression runs (``errors``) the
    error matrices and theirs, the accuracy keys present and null (never a mixed number)."""
    if errors:
        nothing = matrix_summary("failed", R, None)
        scores = {**{k: None for k in nothing}, **error_summary(status, errors)}
    else:
        scores = matrix_summary(status, R, initial)
    return {
        "experiment": cfg.name,
        "strategy": cfg.strategy.name,
        "seed": cfg.seed,
        "status": status,
        "error": error,
        "scenario": bench.scenario_name,
        "target": bench.target,
        "experience_names": list(bench.experience_names),
        "experiences_trained": trained,
        **scores,
        "wall_time_s": round(wall, 3),
    }


def matrix_csv(names: Sequence[str], R: np.ndarray, initial: np.ndarray | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trained_on", *names])
    rows = ([("(initial)", initial)] if initial is not None else []) + list(
        zip(names, R, strict=True)
    )
    for label, row in rows:
        writer.writerow([label, *("" if np.isnan(v) else f"{v:.6f}" for v in row)])
    return buffer.getvalue()
