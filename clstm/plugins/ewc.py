"""``RecurrentEWCPlugin``: Avalanche's EWC whose importance pass works for RNNs on CUDA."""

from __future__ import annotations

import torch
from avalanche.training.plugins import EWCPlugin


class RecurrentEWCPlugin(EWCPlugin):
    """Avalanche's ``EWCPlugin`` with the importance pass run without cuDNN.

    Why: ``EWCPlugin.compute_importances`` puts the model in ``eval`` mode and calls
    ``loss.backward()``; cuDNN refuses backward through an RNN in eval mode ("cudnn RNN backward
    can only be called in training mode"). Avalanche 0.6 means to switch RNNs to train mode on
    CUDA, but its guard compares a ``torch.device`` with the string ``"cuda"`` and never fires
    (and train mode would turn dropout on). Here the pass runs with cuDNN disabled: PyTorch's
    native RNN kernels accept backward in eval mode, and the model keeps eval behaviour. On the
    CPU nothing changes.
    """

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, **kw):
        """Fisher information of each parameter on ``dataset`` (Avalanche's computation)."""
        with torch.backends.cudnn.flags(enabled=False):
            return super().compute_importances(
                model, criterion, optimizer, dataset, device, batch_size, **kw
            )
