"""DER fixes: ``DERMaskedLogitsPlugin`` (logit matching restricted to units that were active) and
``TargetDER`` (DER++ for per-step and regression targets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from avalanche.training import DER
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer, ReservoirSamplingBuffer

from clstm.strategies.lean import LeanIteration

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


@torch.no_grad()
def stored_outputs(dataset, model, batch_size: int, device) -> list[torch.Tensor]:
    """The model's output for every sample of ``dataset`` (in order, on the CPU), each through
    its own task's head, per-step outputs padded with zeros to the samples' steps."""
    from avalanche.models.utils import avalanche_forward

    was_training = model.training
    model.eval()
    outputs = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, _, t, *_ in loader:
        out = avalanche_forward(model, x.to(device), t.to(device)).detach().cpu()
        if out.dim() == 3:  # (b, T', W): the batch's longest sequence; pad to the samples' T
            out = F.pad(out, (0, 0, 0, x.shape[1] - out.shape[1]))
        outputs.extend(out.clone())
    model.train(was_training)
    return outputs


class ExperienceBalancedBufferWithOutputs(ExperienceBalancedBuffer):
    """Avalanche's experience-balanced reservoir memory, each sample kept with the model's output
    at the end of its experience (a ``logits`` attribute, as Avalanche's DER stores)."""

    def update(self, strategy, **kwargs):
        from avalanche.benchmarks.utils import make_avalanche_dataset
        from avalanche.benchmarks.utils.data_attribute import TensorDataAttribute
        from avalanche.benchmarks.utils.flat_data import FlatData

        data = strategy.experience.dataset
        model, device = strategy.model, strategy.device
        outputs = stored_outputs(data.eval(), model, strategy.train_mb_size, device)
        attribute = TensorDataAttribute(
            FlatData([outputs], discard_elements_not_in_indices=True),
            name="logits",
            use_in_getitem=True,
        )
        with_outputs = make_avalanche_dataset(data, data_attributes=[attribute])
        # the rest is ExperienceBalancedBuffer.update on the data with their outputs
        num_exps = strategy.clock.train_exp_counter + 1
        lens = self.get_group_lengths(num_exps)
        new_buffer = ReservoirSamplingBuffer(lens[-1])
        new_buffer.update_from_dataset(with_outputs)
        self.buffer_groups[num_exps - 1] = new_buffer
        for length, buffer in zip(lens, self.buffer_groups.values(), strict=True):
            buffer.resize(strategy, length)


def output_matching(output: torch.Tensor, stored: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DER's term matching the outputs of memory samples to their stored outputs.

    Regression ``(B, K)``: the mean squared difference over all values (Avalanche's DER).
    Per-step ``(B, T', W)``: the mean squared difference over a step's ``W`` units, summed over
    the steps that carry a target (``y`` there is not :data:`clstm.targets.NO_TARGET`) and
    averaged over sequences - the reduction of clstm's per-step losses, so ``alpha`` weighs the
    matching against the task loss as in DER. Steps without a target (input steps, padding) are
    not matched: their outputs are trained to nothing.
    """
    from clstm.targets import target_steps

    if output.dim() == 2:
        return F.mse_loss(output, stored)
    steps = output.shape[1]
    per_step = (output - stored[:, :steps]).pow(2).mean(dim=-1)  # (B, T')
    return (per_step * target_steps(y[:, :steps])).sum() / len(output)


class TargetDER(LeanIteration, DER, replaces=("training_epoch",)):
    """Avalanche's DER++ for targets other than one class per sequence (:mod:`clstm.targets`).

    Why a subclass: Avalanche 0.6's DER balances its memory over each sample's class, stores
    outputs with ``model(x)`` (no task labels: a multi-head model answers with every head;
    per-step outputs of different batches differ in length and cannot be stacked), and its
    ``training_epoch`` hard-codes cross-entropy on ``(B, C)`` logits. Here the memory is
    experience-balanced (:class:`ExperienceBalancedBufferWithOutputs`), and the loss is, as in
    DER++, the target kind's loss on the current batch, plus ``alpha`` times
    :func:`output_matching` and ``beta`` times the target kind's loss on the memory batch. The
    loss is computed in :meth:`criterion`, so the training loop is the template's own (DER's
    differs from it only by its hard-coded loss), here
    :class:`clstm.strategies.lean.LeanIteration`'s.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.storage_policy = ExperienceBalancedBufferWithOutputs(self.mem_size, adaptive_size=True)

    def criterion(self):
        if not self.is_training or self.replay_loader is None:
            return super().criterion()
        m, out, y = self.batch_size_mem, self.mb_output, self.mb_y
        return (
            self._criterion(out[m:], y[m:])
            + self.alpha * output_matching(out[:m], self.batch_logits, y[:m])
            + self.beta * self._criterion(out[:m], y[:m])
        )
