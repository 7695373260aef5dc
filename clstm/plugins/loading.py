"""``StackedEvalLoaderPlugin``: evaluation batches cut from test sets stacked once per run."""

from __future__ import annotations

from avalanche.benchmarks.utils.data_loader import SingleDatasetDataLoader
from avalanche.training.plugins import SupervisedPlugin
from torch.utils.data import BatchSampler, SequentialSampler

from clstm.data.batches import MAX_BYTES, batch_loader, stacked


class StackedEvalLoaderPlugin(SupervisedPlugin):
    """Replaces the evaluation loader by one over the experience's samples, stacked once.

    The accuracy matrix evaluates every test set after every experience (T + 1 times), and
    Avalanche's loader reads every sample through its dataset layers each time. Each evaluated
    dataset is stacked the first time it is seen and kept
    for the run (up to ``max_bytes`` in all; larger sets are loaded as before); batches and
    their order are the same as Avalanche's loader gives. Only Avalanche's default evaluation
    loader is replaced, and only for datasets :func:`~clstm.data.batches.stacked` accepts.
    """

    def __init__(self, max_bytes: int = MAX_BYTES):
        super().__init__()
        self.max_bytes = max_bytes
        self._cache: dict[int, tuple] = {}

    def before_eval_exp(self, strategy, **kwargs):
        """Runs once the evaluation loader for this experience exists."""
        if type(strategy.dataloader) is not SingleDatasetDataLoader:
            return
        source = strategy.experience.dataset  # the same object at every evaluation of a stream
        hit = self._cache.get(id(source))
        if hit is None or hit[0] is not source:
            used = sum(b.nbytes for _, b in self._cache.values())
            batches = stacked(strategy.adapted_dataset, self.max_bytes - used)
            if batches is None:
                return
            hit = self._cache[id(source)] = (source, batches)
        batches = hit[1]
        sampler = BatchSampler(SequentialSampler(range(len(batches))), strategy.eval_mb_size, False)
        strategy.dataloader = batch_loader(
            batches, sampler, pin_memory=strategy.device.type == "cuda"
        )

    def __getstate__(self):  # checkpoints do not carry the stacked copies
        return {**self.__dict__, "_cache": {}}
