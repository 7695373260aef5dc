"""clstm's Avalanche plugins, one module each. Importing this package imports Avalanche."""

from clstm.plugins.accuracy_matrix import AccuracyMatrixMetric
from clstm.plugins.bucketing import LengthBucketingPlugin
from clstm.plugins.divergence import DivergenceGuard, RunDiverged
from clstm.plugins.lstm import LSTMPlugin, lr_factor, reset_recurrent_state

__all__ = [
    "AccuracyMatrixMetric",
    "DivergenceGuard",
    "LengthBucketingPlugin",
    "LSTMPlugin",
    "RunDiverged",
    "lr_factor",
    "reset_recurrent_state",
]
