"""clstm: continual learning with recurrent sequence models (LSTM/GRU) on Avalanche.

Importing ``clstm`` is cheap: the public names below are loaded on first use (Avalanche, which
takes seconds to import, only when a run or a plugin needs it).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "run_experiment": "clstm.runner",
    "RunResult": "clstm.runner",
    "RunExistsError": "clstm.errors",
    "RunLockedError": "clstm.errors",
    "RunFailed": "clstm.errors",
    "OutputError": "clstm.errors",
    "run_sweep": "clstm.sweep",
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
