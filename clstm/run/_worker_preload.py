"""Modules a sweep's worker processes need, imported once in the fork server.

``run_sweep(workers > 1)`` starts its workers from a ``forkserver`` that imports this module
first: torch, Avalanche, TensorBoard's writer and the heatmap's colormaps (~5 s together) are
then imported once for the whole sweep instead of once per worker, at the same time as the other
workers' imports on the same cores. Nothing here runs a torch op or touches CUDA, so forking
afterwards is safe. A module missing from this list only costs time, never correctness.
"""

# ruff: noqa: F401
import sklearn.model_selection
import sklearn.preprocessing
import torch
import torch.utils.tensorboard
from avalanche.benchmarks.scenarios import dataset_scenario, supervised, task_aware
from avalanche.evaluation import metrics
from avalanche.logging import TensorboardLogger
from avalanche.training import plugins, templates
from matplotlib import colormaps  # the accuracy-matrix heatmap's colours
from PIL import ImageDraw, ImageFont

from clstm import strategies
from clstm.run import runner
