"""Modules a sweep's worker processes need, imported once in the fork server.

``run_sweep(workers > 1)`` starts its workers from a ``forkserver`` that imports this module
first: torch, Avalanche, TensorBoard's writer and matplotlib (~5 s together) are then imported
once for the whole sweep instead of once per worker, at the same time as the other workers'
imports on the same cores. Nothing here runs a torch op or touches CUDA, so forking afterwards
is safe. A module missing from this list only costs time, never correctness.
"""

import matplotlib

matplotlib.use("Agg")  # the accuracy-matrix heatmaps render off-screen
import matplotlib.pyplot  # noqa: E402, F401
import sklearn.model_selection  # noqa: E402, F401
import sklearn.preprocessing  # noqa: E402, F401
import torch  # noqa: E402, F401
import torch.utils.tensorboard  # noqa: E402, F401
from avalanche.benchmarks.scenarios import dataset_scenario, supervised, task_aware  # noqa: E402, F401
from avalanche.evaluation import metrics  # noqa: E402, F401
from avalanche.logging import TensorboardLogger  # noqa: E402, F401
from avalanche.training import plugins, templates  # noqa: E402, F401

from clstm import runner, strategies  # noqa: E402, F401
