"""``DERMaskedLogitsPlugin``: DER's logit matching, restricted to units that were active."""

from __future__ import annotations

import torch
from avalanche.training.plugins import SupervisedPlugin

#: Stored logits at or below this were masked units (Avalanche masks with -1000, clstm's
#: multi-task padding is -1e9); no trained logit comes near it.
MASKED_BELOW = -500.0


class DERMaskedLogitsPlugin(SupervisedPlugin):
    """Makes DER's logit-matching term ignore units that were masked when logits were stored.

    Why: Avalanche 0.6's DER adds ``alpha * mse(outputs, stored_logits)`` over every output unit.
    With a class-incremental head (``IncrementalClassifier``, which masks classes not yet seen
    with -1000), logits stored after an experience hold -1000 for later classes; once those
    classes arrive their units are real numbers, and the squared gap (~10^6) swamps the loss:
    the model stops learning new classes (accuracy on each new two-class experience stays 0.5).
    Runs after the forward pass, once DER has drawn its memory batch: stored values of masked
    units are replaced by the current outputs (detached), so they add nothing to the MSE; the
    other units are matched as DER intends. The mean is still over all units, so the term's
    scale is that of Avalanche's DER.
    """

    def after_forward(self, strategy, **kwargs):
        """Runs after each training forward pass."""
        stored = getattr(strategy, "batch_logits", None)
        if stored is None or getattr(strategy, "replay_loader", None) is None:
            return
        current = strategy.mb_output[: stored.shape[0], : stored.shape[1]].detach()
        strategy.batch_logits = torch.where(stored <= MASKED_BELOW, current, stored)
