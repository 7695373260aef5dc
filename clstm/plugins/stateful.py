"""``StatefulWindowsPlugin``: Keras-style stateful training over consecutive windows."""

from __future__ import annotations

from avalanche.training.plugins import SupervisedPlugin
from torch.utils.data import DataLoader

from clstm.data.batches import loader
from clstm.data.sampling import ConsecutiveWindowsBatchSampler
from clstm.plugins.lstm import reset_recurrent_state


class StatefulWindowsPlugin(SupervisedPlugin):
    """Feeds consecutive windows of the same series to the same batch row, state carried.

    Needs a stateful model (:class:`clstm.models.RecurrentEncoder` with ``stateful=True``, which
    carries its final state into the next batch and detaches it: truncated back-propagation
    through time, one window at a time) and data stored series-major (``cued_recall``).

    - before each training and evaluation experience, the strategy's loader is replaced by one
      with :class:`ConsecutiveWindowsBatchSampler` (series shuffled in training, not in
      evaluation);
    - before a batch of first windows (every ``n_windows`` batches) the recurrent state is reset,
      so one series never inherits another's state. ``LSTMPlugin`` also resets it at every
      experience boundary.
    """

    def __init__(self, windows_per_series: int):
        super().__init__()
        self.windows = windows_per_series
        self._eval_batches = 0

    def _loader(self, strategy, batch_size: int, shuffle: bool) -> DataLoader:
        dataset = strategy.adapted_dataset
        sampler = ConsecutiveWindowsBatchSampler(
            len(dataset), self.windows, batch_size, shuffle=shuffle
        )
        return loader(dataset, sampler, pin_memory=strategy.device.type == "cuda")

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience: windows in order, series shuffled."""
        strategy.dataloader = self._loader(strategy, strategy.train_mb_size, shuffle=True)

    def before_training_iteration(self, strategy, **kwargs):
        """Runs before each training batch: a fresh state at the start of each group of series."""
        if strategy.clock.train_epoch_iterations % self.windows == 0:
            reset_recurrent_state(strategy.model)

    def before_eval_exp(self, strategy, **kwargs):
        """Runs before each evaluation experience: windows in order."""
        strategy.dataloader = self._loader(strategy, strategy.eval_mb_size, shuffle=False)
        self._eval_batches = 0

    def before_eval_iteration(self, strategy, **kwargs):
        """Runs before each evaluation batch: a fresh state at the start of each group."""
        if self._eval_batches % self.windows == 0:
            reset_recurrent_state(strategy.model)
        self._eval_batches += 1
