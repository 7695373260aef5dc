"""``LengthBucketingPlugin``: length-bucketed training batches inside any Avalanche strategy."""

from __future__ import annotations

from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader
from avalanche.training.plugins import SupervisedPlugin
from torch.utils.data import DataLoader

from clstm.data.batches import loader
from clstm.data.sampling import LengthBucketBatchSampler


class LengthBucketingPlugin(SupervisedPlugin):
    """Replaces the strategy's plain training loader by a length-bucketed one.

    Runs in ``before_training_exp``, after Avalanche built ``strategy.dataloader``. It only replaces
    a plain ``DataLoader``, or a ``TaskBalancedDataLoader`` over a single task (the same batches
    without the grouping); loaders that strategies build for their own purpose (e.g. replay's
    ``ReplayDataLoader``) are left alone. Needs the ``lengths`` data attribute that clstm's datasets
    carry; without it the loader is left unchanged. Batches are cut from the experience's
    samples stacked once (:func:`clstm.data.batches.stacked`) where that is exact.
    """

    def before_training_exp(self, strategy, **kwargs):
        """Runs before each training experience, once the training loader exists."""
        current = strategy.dataloader
        dataset = strategy.adapted_dataset
        if type(current) is TaskBalancedDataLoader:
            tasks = getattr(dataset, "targets_task_labels", None)
            if tasks is None or len(tasks.uniques) != 1:
                return
        elif type(current) is not DataLoader:
            return
        lengths = getattr(dataset, "lengths", None)
        if lengths is None:
            return
        strategy.dataloader = loader(
            dataset,
            LengthBucketBatchSampler(list(lengths), strategy.train_mb_size),
            pin_memory=strategy.device.type == "cuda",
        )
