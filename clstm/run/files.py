"""The files of a run directory, named once, and how they are written: atomically.

A run lives in ``<out>/<experiment>/<run name>/seed<k>/`` (:mod:`clstm.run.rundir`) and holds
:data:`CONFIG`, :data:`META`, :data:`METRICS`, one CSV file per matrix (:func:`matrix_csv_name`),
:data:`CHECKPOINT` while it can be resumed, :data:`TRACEBACK` when it failed, and its TensorBoard
events; the experiment folder holds a sweep's :data:`SWEEP`. Every file is written through a
temporary file beside it and a rename, so a reader (or a crash) never sees a half-written one.
No heavy imports here.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

#: the fully resolved config of the run (``clstm run`` accepts it as it is)
CONFIG = "config.yaml"
#: provenance, written before training starts, after every experience and at the end
META = "meta.json"
#: the run's outcome (:class:`clstm.run.outcome.RunResult`), written at the end
METRICS = "metrics.json"
#: the strategy after the latest experience, for ``--resume``
CHECKPOINT = "checkpoint.pt"
#: continual evaluation (``eval.every``): every experience evaluated during training
CURVES = "curves.csv"
#: an online stream (``online.batch``): every incoming batch's score before training on it
PREQUENTIAL = "prequential.csv"
#: the traceback of a run that failed
TRACEBACK = "traceback.txt"
#: in the experiment folder: every run of the sweeps that wrote it, with its status
SWEEP = "sweep.json"
#: a tune's folder (``<out>/<experiment>/tune/``): its section and trials, then its selection
TUNE = "tune.json"
SELECTION = "selection.json"


def matrix_csv_name(measure: str) -> str:
    """The CSV file of a run's matrix of ``measure`` (``accuracy_matrix.csv``,
    ``error_matrix_mse.csv``, ...; :data:`clstm.metrics.MEASURES`)."""
    from clstm.metrics import MEASURES

    return f"{MEASURES[measure].matrix_key}.csv"


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file beside it, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; run files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically; non-finite floats are written as ``null``."""
    write_text_atomic(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
