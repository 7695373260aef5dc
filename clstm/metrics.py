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

This module needs numpy only.
"""

from __future__ import annotations

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
