"""Registry of built-in benchmarks: name -> module holding its ``Config`` dataclass and ``build``.

Adding a benchmark = one module (with a ``Config`` dataclass and ``build(config)``)
plus one line here. Modules are imported only when their benchmark is used, so listing the
registry (``clstm list``) costs nothing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from clstm.config.schema import did_you_mean
from clstm.errors import ConfigError

#: benchmark name -> (module path, one-line description)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "synthetic": (
        "clstm.data.synthetic",
        "generated sequences; each experience labels the same input space by its own "
        "time-integrated rule (conflicting rules, fixed or variable length)",
    ),
    "seq_digits": (
        "clstm.data.seq_digits",
        "scikit-learn's 8x8 digits read row by row (8 steps x 8 features): split "
        "(class-incremental) or permuted (domain-incremental)",
    ),
    "cued_recall": (
        "clstm.data.cued_recall",
        "long series cut into windows, the class cued only at the start: memory across windows "
        "(train.state: stateful) is needed",
    ),
    "smnist": (
        "clstm.data.smnist",
        "Split MNIST as sequences (read: row 28x28 or pixel 784x1), digits in pairs; "
        "class-incremental (task too); files downloaded once (torchvision's layout)",
    ),
    "pmnist": (
        "clstm.data.pmnist",
        "Permuted MNIST as sequences (read: row or pixel), a fixed permutation per experience; "
        "domain-incremental (task too); files downloaded once",
    ),
    "mnist1d": (
        "clstm.data.mnist1d",
        "MNIST-1D (40 steps x 1), generated offline by the mnist1d package: split "
        "(class-incremental) or permuted (domain-incremental) (needs clstm[mnist1d])",
    ),
    "har": (
        "clstm.data.har",
        "UCI-HAR (128 steps x 9 inertial channels, 6 activities) in 3 experiences of 2 "
        "classes as in TSCIL; class-incremental (task too); downloaded once",
    ),
    "uwave": (
        "clstm.data.uwave",
        "UWave gestures (315 steps x 3 axes, 8 classes) in 4 experiences of 2 as in TSCIL; "
        "class-incremental; the UCR sets UWaveGestureLibraryX/Y/Z, downloaded once",
    ),
    "dsa": (
        "clstm.data.dsa",
        "Daily and Sports Activities (125 steps x 45 IMU channels, 18 classes) in tasks of 2 as "
        "in TSCIL (6 experiment + 3 tuning tasks); class-incremental; downloaded once",
    ),
    "wisdm": (
        "clstm.data.wisdm",
        "WISDM 2019 phone accelerometer (200-step windows x 3, 18 activities) in tasks of 2 as "
        "in TSCIL (6 experiment + 3 tuning); class-incremental; downloaded once",
    ),
    "copy": (
        "clstm.data.copy_task",
        "the Copy Task family of Ehret et al. 2021 (permuted, padded, pattern manipulation): "
        "reproduce a bit pattern after a stop bit, per-step bit targets; task-incremental",
    ),
    "forecast_regimes": (
        "clstm.data.forecast",
        "continual forecasting: series from a different AR(2) oscillator and season per "
        "experience, windows predict the next steps (regression targets, MSE/MAE)",
    ),
    "forecast_aeon": (
        "clstm.data.forecast_aeon",
        "continual forecasting of the real series that ship with aeon (airline, solar, lynx, "
        "US changes, PBS, M1 yearly), one source per experience (needs clstm[ucr])",
    ),
    "npz": (
        "clstm.data.npz",
        "your own datasets, one .npz file per experience (X_train, y_train, X_test, y_test)",
    ),
    "ucr_stream": (
        "clstm.data.ucr",
        "UCR/UEA classification sets by name, one per experience (7 ship with aeon, offline; "
        "others downloaded once); task-incremental (needs clstm[ucr])",
    ),
    "python": (
        "clstm.data.python_benchmark",
        "recorded in config.yaml for runs whose benchmark was passed from Python; not buildable "
        "from a config (run it from Python again)",
    ),
}


def benchmark_module(name: str) -> ModuleType:
    """The module implementing benchmark ``name``; a clear error for an unknown name."""
    if name not in BENCHMARKS:
        raise ConfigError(
            f"benchmark.name: unknown benchmark '{name}'{did_you_mean(name, list(BENCHMARKS))}; "
            f"choose one of {', '.join(BENCHMARKS)}"
        )
    return importlib.import_module(BENCHMARKS[name][0])


def benchmark_config_class(name: str) -> type:
    """The config dataclass of benchmark ``name``."""
    return benchmark_module(name).Config


def benchmarks_with_option(key: str) -> list[str]:
    """The benchmarks whose config has option ``key`` (for a key given to the wrong benchmark)."""
    from dataclasses import fields

    return [n for n in BENCHMARKS if key in {f.name for f in fields(benchmark_config_class(n))}]
