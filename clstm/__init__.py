"""clstm: continual learning with recurrent sequence models (LSTM/GRU) on Avalanche.

Importing ``clstm`` is cheap: the public names below are loaded on first use (Avalanche, which
takes seconds to import, only when a run or a plugin needs it).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "run_experiment": "clstm.run.runner",
    "RunResult": "clstm.run.outcome",
    "RunExistsError": "clstm.errors",
    "RunLockedError": "clstm.errors",
    "RunFailed": "clstm.errors",
    "OutputError": "clstm.errors",
    "run_sweep": "clstm.run.sweep",
    "tune": "clstm.run.tune",
    "TuneResult": "clstm.run.tune",
    "load_config": "clstm.config",
    "ExperimentConfig": "clstm.config",
    "ConfigError": "clstm.errors",
    "benchmark_from_arrays": "clstm.data.arrays",
    "DataError": "clstm.errors",
    "SequenceBenchmark": "clstm.data.sequences",
    "SequenceClassifier": "clstm.models",
    "RecurrentEncoder": "clstm.models",
    "LSTMPlugin": "clstm.plugins",
    "LengthBucketingPlugin": "clstm.plugins",
    "AccuracyMatrixMetric": "clstm.plugins",
    "DivergenceGuard": "clstm.plugins",
    "RunDiverged": "clstm.plugins",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clstm' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)


#: modules that moved when the package was split into subpackages (0.2): old path -> new path
_RUN = ("runner", "protocol", "rundir", "outcome", "provenance", "checkpoint", "stopping",
        "logging", "sweep", "grid")  # fmt: skip
MOVED = {
    **{f"clstm.{name}": f"clstm.config.{name}" for name in ("schema", "yamlio")},
    "clstm.multitask": "clstm.models.multitask",
    **{f"clstm.{name}": f"clstm.strategies.{name}" for name in ("lean", "joint")},
    **{f"clstm.{name}": f"clstm.run.{name}" for name in _RUN},
    "clstm.io": "clstm.run.files",
    "clstm.report_latex": "clstm.report.latex",
    "clstm.report_figures": "clstm.report.figures",
    "clstm.published": "clstm.report.published",
    "clstm.archive": "clstm.report.archive",
}


class _MovedModule:  # a meta path finder and loader (importlib.abc costs ~10 ms to import)
    """Imports of a module's old path (:data:`MOVED`) give a module that forwards to the new one.

    For users' scripts (``from clstm.lean import LeanIteration`` keeps working, with a
    DeprecationWarning naming the new path) and for checkpoints written before the move, which
    pickle every class by the path of its module (``clstm.lean.LeanNaive``): unpickling imports
    the old path and finds the class through it. The old path's module is a stand-in whose
    attributes are the new module's, so classes are the same objects under both paths.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # a plain module, filled by exec_module

    def exec_module(self, module) -> None:
        new = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {new}; import it from there", DeprecationWarning,
            stacklevel=2,
        )  # fmt: skip
        target = importlib.import_module(new)
        module.__getattr__ = lambda name: getattr(target, name)
        module.__dir__ = lambda: dir(target)
        module.__doc__ = f"Moved to :mod:`{new}`."


if not any(isinstance(finder, _MovedModule) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModule())
