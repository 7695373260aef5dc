"""The models: recurrent encoders over padded batches, and the heads of each scenario.

- :mod:`~clstm.models.encoder`: :class:`RecurrentEncoder` (LSTM/GRU/RNN, packed or padded, per
  step or at each sequence's last real step, stateful);
- :mod:`~clstm.models.heads`: :class:`SequenceClassifier` (encoder, dropout, one head) and the
  per-task input projections;
- :mod:`~clstm.models.multitask`: one head per task, on Avalanche's multi-task modules (imports
  Avalanche);
- :mod:`~clstm.models.build`: :func:`build_model`, the model a config describes for a benchmark.

Input batches follow :mod:`clstm.data.sequences`: ``x`` is ``(B, T, F + 1)``, right-padded, with a
validity mask as last channel.
"""

from clstm.models.build import build_model, init_orthogonal_hh, parameter_count
from clstm.models.encoder import RecurrentEncoder, dropped
from clstm.models.heads import SequenceClassifier, TaskInputProjection

__all__ = [
    "RecurrentEncoder", "SequenceClassifier", "TaskInputProjection", "build_model", "dropped",
    "init_orthogonal_hh", "parameter_count",
]  # fmt: skip
