"""Continual-learning metrics as pure functions of the accuracy matrix.

Notation: ``T`` experiences; ``R[i, j]`` is the test accuracy on experience ``j`` after training on
experiences ``0..i`` (a ``T x T`` array, rows = training progress, columns = test sets); ``b[j]`` is
the accuracy on experience ``j`` of the model before any training (the initial row). A metric that
needs more than one experience (BWT, FWT, forgetting) is ``None`` when ``T = 1``, never a made-up 0.

The literature uses two definitions of forgetting; both are here, named by what they compare:

- :func:`forgetting` - best earlier accuracy minus final accuracy (Chaudhry et al. 2018, "Riemannian
  Walk"; also FACIL and Mammoth). This is the ``forgetting`` in clstm's ``metrics.json``.
- :func:`forgetting_learned` - accuracy right after learning an experience minus final accuracy
  (Avalanche's ``ExperienceForgetting``/``StreamForgetting``). Its mean is ``-BWT``.

For regression targets the matrix holds errors, ``E[i, j]`` (MSE or MAE on experience ``j`` after
training on ``0..i``), where lower is better. The ``*_error*`` functions below are the same
summaries with the sign made explicit: each is an error *change*, positive when the error grew.

The catalogue at the end (:data:`CATALOGUE`, :data:`MEASURES`) names every summary a run records
once - its key, title, direction, format and TensorBoard tag - for the CLI, the report, LaTeX,
TensorBoard's HParams and the published comparisons, and every measure a matrix can hold.

This module needs numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _square(R) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square T x T with T >= 1, got {R.shape}")
    return R


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def average_accuracy(R) -> float:
    """ACC = (1/T) * sum_j R[T-1, j]: mean final accuracy over all experiences."""
    R = _square(R)
    return float(np.mean(R[-1]))


def learning_accuracy(R) -> float:
    """LA = (1/T) * sum_j R[j, j]: mean accuracy on each experience right after learning it."""
    R = _square(R)
    return float(np.mean(np.diag(R)))


def backward_transfer_per_experience(R) -> np.ndarray:
    """bwt_j = R[T-1, j] - R[j, j] for j < T-1 (negative = forgotten)."""
    R = _square(R)
    return R[-1, :-1] - np.diag(R)[:-1]


def backward_transfer(R) -> float | None:
    """BWT = (1/(T-1)) * sum_{j<T-1} (R[T-1, j] - R[j, j]) (Lopez-Paz & Ranzato 2017)."""
    return _mean(backward_transfer_per_experience(R))


def forward_transfer_per_experience(R, b) -> np.ndarray:
    """fwt_j = R[j-1, j] - b[j] for j >= 1: accuracy on j just before learning it, minus b[j]."""
    R = _square(R)
    b = np.asarray(b, dtype=float)
    if b.shape != (R.shape[0],):
        raise ValueError(f"the initial row must have T = {R.shape[0]} values, got {b.shape}")
    return np.array([R[j - 1, j] - b[j] for j in range(1, R.shape[0])])


def forward_transfer(R, b) -> float | None:
    """FWT = (1/(T-1)) * sum_{j>=1} (R[j-1, j] - b[j]) (Lopez-Paz & Ranzato 2017)."""
    return _mean(forward_transfer_per_experience(R, b))


def forgetting_per_experience(R) -> np.ndarray:
    """f_j = max_{l in j..T-2} R[l, j] - R[T-1, j] for j < T-1 (best once learnt, minus final)."""
    R = _square(R)
    T = R.shape[0]
    return np.array([np.max(R[j : T - 1, j]) - R[T - 1, j] for j in range(T - 1)])


def forgetting(R) -> float | None:
    """F = (1/(T-1)) * sum_{j<T-1} (max_{l in j..T-2} R[l, j] - R[T-1, j]); Chaudhry et al. 2018."""
    return _mean(forgetting_per_experience(R))


def forgetting_learned_per_experience(R) -> np.ndarray:
    """g_j = R[j, j] - R[T-1, j] for j < T-1: accuracy right after learning minus final."""
    return -backward_transfer_per_experience(R)


def forgetting_learned(R) -> float | None:
    """G = (1/(T-1)) * sum_{j<T-1} (R[j, j] - R[T-1, j]) (Avalanche's forgetting); equals -BWT."""
    return _mean(forgetting_learned_per_experience(R))


def summarize(R, b=None) -> dict:
    """Every metric of a (square) accuracy matrix, plus the per-experience values behind them.

    ``b`` (the initial row) is optional; without it FWT is ``None``.
    """
    R = _square(R)
    fwt = forward_transfer_per_experience(R, b) if b is not None else None
    return {
        "acc": average_accuracy(R),
        "bwt": backward_transfer(R),
        "fwt": _mean(fwt) if fwt is not None else None,
        "forgetting": forgetting(R),
        "forgetting_learned": forgetting_learned(R),
        "learning_accuracy": learning_accuracy(R),
        # Lists of T values indexed by experience; None where a value is undefined.
        "per_experience": {
            "final_accuracy": R[-1].tolist(),
            "learning_accuracy": np.diag(R).tolist(),
            "bwt": [*backward_transfer_per_experience(R).tolist(), None],
            "fwt": [None, *fwt.tolist()] if fwt is not None else None,
            "forgetting": [*forgetting_per_experience(R).tolist(), None],
            "forgetting_learned": [*forgetting_learned_per_experience(R).tolist(), None],
        },
    }


# --------------------------------------------------------------------------------------------------
# Error matrices (regression): lower is better; every change is "later minus earlier error".
# --------------------------------------------------------------------------------------------------


def average_error(E) -> float:
    """Final error = (1/T) * sum_j E[T-1, j]: mean error over all experiences at the end."""
    return float(np.mean(_square(E)[-1]))


def learning_error(E) -> float:
    """(1/T) * sum_j E[j, j]: mean error on each experience right after learning it."""
    return float(np.mean(np.diag(_square(E))))


def error_increase_per_experience(E) -> np.ndarray:
    """inc_j = E[T-1, j] - E[j, j] for j < T-1: final error minus error right after learning
    (positive = the error grew, i.e. forgetting; the error form of BWT with its sign flipped)."""
    E = _square(E)
    return E[-1, :-1] - np.diag(E)[:-1]


def error_increase(E) -> float | None:
    """(1/(T-1)) * sum_{j<T-1} (E[T-1, j] - E[j, j]); positive = errors grew after learning."""
    return _mean(error_increase_per_experience(E))


def error_forgetting_per_experience(E) -> np.ndarray:
    """fe_j = E[T-1, j] - min_{l in j..T-2} E[l, j] for j < T-1: final error minus the best
    (lowest) error once learnt; >= 0."""
    E = _square(E)
    T = E.shape[0]
    return np.array([E[T - 1, j] - np.min(E[j : T - 1, j]) for j in range(T - 1)])


def error_forgetting(E) -> float | None:
    """(1/(T-1)) * sum_{j<T-1} (E[T-1, j] - min_{l in j..T-2} E[l, j]): the error form of
    Chaudhry et al.'s forgetting (increase over the best earlier value)."""
    return _mean(error_forgetting_per_experience(E))


def forward_error_change_per_experience(E, b) -> np.ndarray:
    """fc_j = E[j-1, j] - b[j] for j >= 1: error on j just before learning it minus the untrained
    model's (negative = earlier experiences already lowered it: positive forward transfer)."""
    return forward_transfer_per_experience(E, b)  # the same difference; its sign reads reversed


def forward_error_change(E, b) -> float | None:
    """(1/(T-1)) * sum_{j>=1} (E[j-1, j] - b[j]); negative = positive forward transfer."""
    return _mean(forward_error_change_per_experience(E, b))


def summarize_errors(E, b=None) -> dict:
    """Every summary of a (square) error matrix, plus the per-experience values behind them."""
    E = _square(E)
    fwd = forward_error_change_per_experience(E, b) if b is not None else None
    return {
        "final_error": average_error(E),
        "learning_error": learning_error(E),
        "error_increase": error_increase(E),
        "error_forgetting": error_forgetting(E),
        "forward_error_change": _mean(fwd) if fwd is not None else None,
        "per_experience": {
            "final_error": E[-1].tolist(),
            "learning_error": np.diag(E).tolist(),
            "error_increase": [*error_increase_per_experience(E).tolist(), None],
            "error_forgetting": [*error_forgetting_per_experience(E).tolist(), None],
            "forward_error_change": [None, *fwd.tolist()] if fwd is not None else None,
        },
    }


# --------------------------------------------------------------------------------------------------
# What a run records from its matrices (metrics.json), per family of matrices
# --------------------------------------------------------------------------------------------------

#: the summaries of an accuracy matrix, as metrics.json names them
ACCURACY_KEYS = ("acc", "bwt", "fwt", "forgetting", "forgetting_learned", "learning_accuracy")
#: :func:`summarize_errors`' names -> the suffix of ``<measure>_<suffix>`` in metrics.json
ERROR_SUFFIXES = {
    "final_error": "final", "learning_error": "learning", "error_increase": "increase",
    "error_forgetting": "forgetting", "forward_error_change": "forward_change",
}  # fmt: skip


def accuracy_record(R, initial, completed: bool) -> dict:
    """The accuracy matrix, initial row and every summary (``None`` unless ``completed``).

    A completed run with only the last row measured (``joint``: no intermediate models) gets ACC
    and the final accuracies; the summaries that need intermediate rows stay ``None``.
    """
    R = np.asarray(R, dtype=float)
    full = completed and not np.isnan(R).any()
    summary = summarize(R, initial) if full else {}
    if completed and not full and not np.isnan(R[-1]).any():
        # average_accuracy reads only the last row; the unmeasured rows do not enter it.
        acc = average_accuracy(np.nan_to_num(R))
        summary = {"acc": acc, "per_experience": {"final_accuracy": R[-1].tolist()}}
    return {
        "accuracy_matrix": R.tolist(),
        "initial_accuracy": initial.tolist() if initial is not None else None,
        **{k: summary.get(k) for k in ACCURACY_KEYS},
        "per_experience": summary.get("per_experience"),
    }


def error_record(errors: dict, completed: bool) -> dict:
    """Each error matrix (``error_matrix_<m>``), its initial row and summaries (``<m>_final``,
    ``<m>_learning``, ``<m>_increase``, ``<m>_forgetting``, ``<m>_forward_change``; ``None``
    unless ``completed``), for every measure ``m`` of ``errors`` (``{m: (initial, E)}``)."""
    out: dict = {}
    for m, (initial, E) in errors.items():
        E = np.asarray(E, dtype=float)
        full = completed and not np.isnan(E).any()
        summary = summarize_errors(E, initial) if full else {}
        if completed and not full and not np.isnan(E[-1]).any():
            summary = {"final_error": average_error(np.nan_to_num(E))}  # joint: last row only
        out[f"error_matrix_{m}"] = E.tolist()
        out[f"initial_error_{m}"] = initial.tolist() if initial is not None else None
        out |= {f"{m}_{short}": summary.get(key) for key, short in ERROR_SUFFIXES.items()}
        out[f"per_experience_{m}"] = summary.get("per_experience")
    return out


# --------------------------------------------------------------------------------------------------
# The catalogue: every summary and every measure, defined once
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A summary of a run's matrix, as every table, figure and log shows it."""

    key: str  #: its key in metrics.json, sweep.json, ``--columns`` and published-values files
    title: str  #: its column title in reports
    label: str  #: its name in a sentence: the end-of-run summary, a sweep's progress lines
    higher_is_better: bool
    tag: str  #: its TensorBoard scalar (and HParams metric)
    description: str  #: what it is, in one line (the formula is the function's docstring)
    fraction: bool = False  #: a fraction in [0, 1] (a published value above 1 is a percentage)
    signed: bool = False  #: printed with its sign (a transfer, a change)

    def text(self, value: float | None, digits: int = 3) -> str:
        """``value`` as clstm prints this metric (``n/a`` when undefined; see :func:`fixed`)."""
        return "n/a" if value is None else fixed(value, digits, plus=self.signed)


#: every summary a report can show, in the order of its columns
CATALOGUE: tuple[Metric, ...] = (
    Metric("acc", "ACC", "ACC", True, "cl/ACC",
           "average accuracy: mean final accuracy over all experiences", fraction=True),
    Metric("bwt", "BWT", "BWT", True, "cl/BWT",
           "backward transfer: final minus just-learnt accuracy (negative = forgotten)",
           signed=True),
    Metric("fwt", "FWT", "FWT", True, "cl/FWT",
           "forward transfer: accuracy just before learning minus the untrained model's",
           signed=True),
    Metric("forgetting", "Forgetting", "forgetting", False, "cl/forgetting",
           "forgetting: best earlier accuracy minus final (Chaudhry et al. 2018)", fraction=True),
    Metric("forgetting_learned", "Forgetting (after learning)", "forgetting after learning",
           False, "cl/forgetting_learned",
           "forgetting: just-learnt minus final accuracy (Avalanche's; equals -BWT)",
           fraction=True),
    Metric("learning_accuracy", "LA", "learning accuracy", True, "cl/learning_accuracy",
           "learning accuracy: mean accuracy on each experience right after learning it",
           fraction=True),
    Metric("mse_final", "final MSE", "final MSE", False, "cl/mse_final",
           "final error: mean MSE over all experiences at the end"),
    Metric("mse_increase", "MSE increase", "MSE increase", False, "cl/mse_increase",
           "final minus just-learnt MSE (positive = forgotten)", signed=True),
    Metric("mse_forgetting", "MSE forgetting", "MSE forgetting", False, "cl/mse_forgetting",
           "final MSE minus the best earlier MSE"),
    Metric("mse_forward_change", "MSE forward change", "forward change", False,
           "cl/mse_forward_change",
           "MSE just before learning minus the untrained model's (negative = transfer)",
           signed=True),
    Metric("mse_learning", "learning MSE", "learning MSE", False, "cl/mse_learning",
           "mean MSE on each experience right after learning it"),
    Metric("mae_final", "final MAE", "final MAE", False, "cl/mae_final",
           "final error: mean MAE over all experiences at the end"),
    # continual evaluation (eval.every): summaries of the curves, in their own report table
    Metric("min_acc", "min-ACC", "min-ACC", True, "continual/min_acc",
           "average minimum accuracy of each earlier experience after it was learnt",
           fraction=True),
    Metric("wc_acc", "WC-ACC", "WC-ACC", True, "continual/wc_acc",
           "worst-case accuracy: the last experience's final and the earlier ones' minimum",
           fraction=True),
    Metric("wf", "WF", "windowed forgetting", False, "continual/wf",
           "windowed forgetting: largest drop within eval.window iterations", fraction=True),
    Metric("gap_depth", "gap depth", "stability gap depth", False, "continual/gap_depth",
           "accuracy at a boundary minus the minimum during the next experience", fraction=True),
    Metric("gap_recovery", "gap recovery (it.)", "gap recovery", False, "continual/gap_recovery",
           "iterations until accuracy is back within eval.tolerance of its boundary value"),
    Metric("max_mse", "max-MSE", "max-MSE", False, "continual/max_mse",
           "average maximum MSE of each earlier experience after it was learnt"),
    Metric("wc_mse", "WC-MSE", "WC-MSE", False, "continual/wc_mse",
           "worst-case MSE: the last experience's final and the earlier ones' maximum"),
    Metric("wf_mse", "WF (MSE)", "windowed MSE increase", False, "continual/wf_mse",
           "largest MSE increase within eval.window iterations"),
    Metric("gap_height", "gap height (MSE)", "stability gap height", False,
           "continual/gap_height",
           "the maximum MSE during the next experience minus the boundary's"),
    # online streams (online.batch): each incoming batch scored before it is trained on
    Metric("preq_acc", "preq. ACC", "prequential accuracy", True, "online/preq_acc_overall",
           "prequential accuracy: incoming sequences predicted right before training on them",
           fraction=True),
    Metric("preq_mse", "preq. MSE", "prequential MSE", False, "online/preq_mse_overall",
           "prequential MSE: the error on incoming windows before training on them"),
    Metric("preq_mae", "preq. MAE", "prequential MAE", False, "online/preq_mae_overall",
           "prequential MAE: the error on incoming windows before training on them"),
)  # fmt: skip
METRICS: dict[str, Metric] = {m.key: m for m in CATALOGUE}


def metric(key: str) -> Metric:
    """The catalogue's entry for ``key``; ``KeyError`` naming the known keys otherwise."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known: {', '.join(METRICS)}") from None


@dataclass(frozen=True)
class Measure:
    """What the cells of a run's matrix hold: accuracies, or an error (MSE, MAE)."""

    name: str  #: ``accuracy``, ``mse`` or ``mae``
    label: str  #: in axis labels and table titles
    higher_is_better: bool
    matrix_key: str  #: the matrix in metrics.json (also its CSV file's stem)
    initial_key: str  #: the initial row in metrics.json
    scalar_prefix: str  #: TensorBoard's per-experience scalars: ``<prefix>NN``
    final: str  #: the key (:data:`METRICS`) of its final summary (ACC, final MSE)


MEASURES: dict[str, Measure] = {
    "accuracy": Measure("accuracy", "accuracy", True, "accuracy_matrix", "initial_accuracy",
                        "accuracy/exp", "acc"),
    "mse": Measure("mse", "MSE", False, "error_matrix_mse", "initial_error_mse", "error/mse/exp",
                   "mse_final"),
    "mae": Measure("mae", "MAE", False, "error_matrix_mae", "initial_error_mae", "error/mae/exp",
                   "mae_final"),
}  # fmt: skip


def fixed(value: float, digits: int = 3, plus: bool = False) -> str:
    """``value`` to ``digits`` decimals (with ``plus``, signed: ``+0.012``), without a negative
    zero: a mean of -0.0002 prints as ``0.000`` (``+0.000``), not ``-0.000`` (a minus sign on a
    printed zero). Python 3.11's ``z`` format option does this; clstm supports 3.10."""
    text = f"{value:{'+' if plus else ''}.{digits}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = ("+" if plus else "") + text[1:]
    return text


# --------------------------------------------------------------------------------------------------
# Continual evaluation: summaries of curves (De Lange, van de Ven & Tuytelaars, ICLR 2023)
# --------------------------------------------------------------------------------------------------
# A curve is one stream's and one measure's records: arrays ``iteration``, ``trained`` (the
# experience being trained), ``tested`` (the experience evaluated) and ``value``, in time order;
# ``ends[k]`` is the iteration at which experience k's training ended (its boundary). Accuracies
# are higher-is-better; for errors (``higher=False``) the same functions run on the negated values.

#: the continual summaries a run records, per family of target kinds (accuracy, errors)
CONTINUAL_KEYS = {
    "accuracy": ("min_acc", "wc_acc", "wf", "gap_depth", "gap_recovery"),
    "errors": ("max_mse", "wc_mse", "wf_mse", "gap_height", "gap_recovery"),
}


def _series(curve: dict, j: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
    tested = np.asarray(curve["tested"])
    rows = tested == j
    return np.asarray(curve["iteration"])[rows], sign * np.asarray(curve["value"], float)[rows]


def min_accuracy(curve: dict, ends: list[int], higher: bool = True) -> float | None:
    """min-ACC = (1/(T-1)) sum_{j<T-1} min_{n > ends[j]} a(j, n): each earlier experience's
    lowest value after its training ended (for errors, the highest: max-MSE)."""
    sign = 1.0 if higher else -1.0
    lows = []
    for j in range(len(ends) - 1):
        it, v = _series(curve, j, sign)
        after = v[it > ends[j]]
        if len(after):
            lows.append(after.min())
    return None if not lows else sign * float(np.mean(lows))


def worst_case_accuracy(curve: dict, ends: list[int], higher: bool = True) -> float | None:
    """WC-ACC = (1/T) a(T-1, end) + (1 - 1/T) min-ACC: the last experience's final value and the
    earlier ones' worst (De Lange et al.'s worst-case accuracy, at the end of training)."""
    T = len(ends)
    it, v = _series(curve, T - 1, 1.0)
    if not len(v):
        return None
    last = float(v[-1])
    if T == 1:
        return last
    low = min_accuracy(curve, ends, higher)
    return None if low is None else last / T + (1 - 1 / T) * low


def windowed_forgetting(curve: dict, ends: list[int], window: int,
                        higher: bool = True) -> float | None:  # fmt: skip
    """WF^w = (1/(T-1)) sum_{j<T-1} max_{ends[j] <= n1 < n2 <= n1 + w} (a(j, n1) - a(j, n2)):
    each earlier experience's largest drop within ``window`` iterations once learnt (for errors,
    the largest increase)."""
    sign = 1.0 if higher else -1.0
    drops = []
    for j in range(len(ends) - 1):
        it, v = _series(curve, j, sign)
        keep = it >= ends[j]
        it, v = it[keep], v[keep]
        worst = 0.0
        for b in range(len(v)):
            before = v[(it < it[b]) & (it >= it[b] - window)]
            if len(before):
                worst = max(worst, float(before.max() - v[b]))
        drops.append(worst)
    return None if not drops else float(np.mean(drops))


def stability_gaps(curve: dict, ends: list[int], tolerance: float,
                   higher: bool = True) -> list[dict]:  # fmt: skip
    """Each experience ``j``'s gap in each later experience ``k``'s training: ``depth``, its
    value at the boundary ``ends[k-1]`` minus its lowest in ``(ends[k-1], ends[k]]``, 0 if it
    never falls below (for errors, the highest minus the boundary's: a height), and
    ``recovery``, the iterations from the boundary until it is back within ``tolerance`` of the
    boundary value after that low (None if it is not, within experience k)."""
    sign = 1.0 if higher else -1.0
    gaps = []
    for k in range(1, len(ends)):
        for j in range(k):
            it, v = _series(curve, j, sign)
            at = v[it == ends[k - 1]]
            inside = (it > ends[k - 1]) & (it <= ends[k])
            if not len(at) or not inside.any():
                continue
            start, its, vs = float(at[-1]), it[inside], v[inside]
            low = int(np.argmin(vs))
            back = np.nonzero(vs[low:] >= start - tolerance)[0]
            recovery = int(its[low + back[0]] - ends[k - 1]) if len(back) else None
            depth = max(0.0, start - float(vs[low]))  # 0: it never fell below the boundary
            gaps.append({"experience": j, "during": k, "depth": depth,
                         "recovery": recovery})  # fmt: skip
    return gaps


def continual_record(curve: dict, ends: list[int], window: int, tolerance: float,
                     higher: bool = True) -> dict:  # fmt: skip
    """metrics.json's continual summaries of one curve (keys :data:`CONTINUAL_KEYS`), and the
    per-experience gaps under ``gaps``."""
    gaps = stability_gaps(curve, ends, tolerance, higher)
    recovered = [g["recovery"] for g in gaps if g["recovery"] is not None]
    keys = CONTINUAL_KEYS["accuracy" if higher else "errors"]
    values = (min_accuracy(curve, ends, higher), worst_case_accuracy(curve, ends, higher),
              windowed_forgetting(curve, ends, window, higher),
              _mean(np.array([g["depth"] for g in gaps])) if gaps else None,
              float(np.median(recovered)) if recovered else None)  # fmt: skip
    return {**dict(zip(keys, values, strict=True)), "gaps": gaps,
            "gaps_recovered": f"{len(recovered)}/{len(gaps)}"}  # fmt: skip
