"""Per-step models compute their output layer and heads at the target steps alone
(clstm.strategies.lean.gathers_steps): the same losses, gradients and matrices as computing them
at every step, to float rounding; every step's output where a plugin or dropout needs it."""

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin

from clstm.data.sequences import pad_sequences
from clstm.models import RecurrentEncoder, SequenceClassifier
from clstm.models.multitask import FixedTaskHeads
from clstm.run.runner import run_experiment
from clstm.targets import NO_TARGET, carried_steps, criterion

COPY = {
    "name": "tiny_copy", "device": "cpu",
    "benchmark": {"name": "copy", "n_experiences": 2, "n_train": 64, "n_test": 32},
    "model": {"type": "rnn", "hidden_size": 16, "elman_output": True},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def _batch(kind: str, seed: int = 0):
    """A padded batch of 6 sequences (lengths 11 and 8) with targets at some of their steps."""
    rng = np.random.default_rng(seed)
    lengths = [11, 8, 11, 11, 8, 11]
    x = pad_sequences([rng.standard_normal((n, 4)).astype(np.float32) for n in lengths])
    shape = (6, 11, 5) if kind == "per_step_bits" else (6, 11)
    y = torch.full(shape, NO_TARGET, dtype=torch.float32 if kind == "per_step_bits" else torch.long)
    for row, n in enumerate(lengths):
        steps = slice(n - 3, n)  # the last three real steps carry a target, as in the Copy Task
        if kind == "per_step_bits":
            y[row, steps] = torch.from_numpy(rng.integers(0, 2, (3, 5))).float()
        else:
            y[row, steps] = torch.from_numpy(rng.integers(0, 5, 3))
    return x, y, torch.tensor([0, 1, 0, 2, 1, 0])


def _model(multitask: bool, dropout: float = 0.0):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(
        n_features=4, cell="rnn", hidden_size=12, per_step=True, elman_output=True
    )
    if multitask:
        return FixedTaskHeads(encoder, 5, 3, dropout=dropout)
    return SequenceClassifier(encoder, 5, dropout=dropout)


def _loss_and_grads(model, x, y, t, kind, steps):
    model.zero_grad()
    args = (x, t) if isinstance(model, FixedTaskHeads) else (x,)
    out = model(*args, steps=steps) if steps is not None else model(*args)
    loss = criterion(kind)(out, y)
    loss.backward()
    return out, loss, [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("kind", ["per_step", "per_step_bits"])
@pytest.mark.parametrize("multitask", [False, True])
def test_outputs_at_the_target_steps_give_the_same_loss_and_gradients(kind, multitask):
    x, y, t = _batch(kind)
    model = _model(multitask)
    full, full_loss, full_grads = _loss_and_grads(model, x, y, t, kind, None)
    steps = carried_steps(y)
    out, loss, grads = _loss_and_grads(model, x, y, t, kind, steps)
    torch.testing.assert_close(out[steps], full[steps], atol=1e-6, rtol=1e-5)
    assert not out[~steps].any()  # nothing computed at steps without a target
    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=1e-6)
    assert len(grads) == len(full_grads) > 0
    for got, expected in zip(grads, full_grads, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_a_target_beyond_the_batchs_sequences_is_refused():
    x, y, _ = _batch("per_step")
    x = x[:, :9]  # every sequence now ends by step 9; the 11-step ones carry targets at 8..10
    with pytest.raises(ValueError, match="targets beyond step 9"):
        _model(False)(x, steps=carried_steps(y))


def test_active_dropout_computes_every_step_with_the_same_random_draws():
    x, y, _ = _batch("per_step")
    model = _model(False, dropout=0.5).train()
    torch.manual_seed(3)
    full = model(x)
    torch.manual_seed(3)
    chosen = model(x, steps=carried_steps(y))
    assert torch.equal(chosen, full)  # every step, the same mask: the all-steps computation


class _Spy(SupervisedPlugin):
    """Records whether the loop's forward passes asked for the target steps alone."""

    def __init__(self, needs_every_step_output: bool = False):
        super().__init__()
        self.needs_every_step_output = needs_every_step_output
        self.calls: list[bool] = []

    def before_training_exp(self, strategy, **kwargs):
        model, spy = strategy.model, self
        if getattr(model, "_spied", False):
            return
        forward = model.forward

        def recorded(*args, **kw):
            spy.calls.append("steps" in kw)
            return forward(*args, **kw)

        model.forward, model._spied = recorded, True


@pytest.mark.parametrize("strategy", ["naive", "der", "ewc", "replay"])
def test_copy_task_runs_give_the_same_matrices_with_outputs_at_target_steps_only(
    tmp_path, monkeypatch, strategy
):
    cfg = {**COPY, "strategy": {"name": strategy}, "benchmark": {**COPY["benchmark"],
           "scenario": "task"}}  # fmt: skip
    spy = _Spy()
    gathered = run_experiment(cfg, out=tmp_path / "gathered", plugins=[spy])
    assert spy.calls and any(spy.calls)  # the lean loop asked for the target steps alone
    monkeypatch.setattr("clstm.strategies.lean.gathers_steps", lambda strategy: False)
    every = run_experiment(cfg, out=tmp_path / "every")
    np.testing.assert_allclose(gathered.accuracy_matrix, every.accuracy_matrix, atol=2e-3)


def test_a_plugin_that_reads_every_steps_output_gets_them(tmp_path):
    for plugins, strategy in (([_Spy(needs_every_step_output=True)], "naive"), ([_Spy()], "lwf")):
        cfg = {**COPY, "strategy": {"name": strategy}}
        run_experiment(cfg, out=tmp_path / strategy, plugins=plugins)
        assert plugins[0].calls and not any(plugins[0].calls)
