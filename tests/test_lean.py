"""The lean training/evaluation iteration (clstm.strategies.lean): every plugin callback fires as in
Avalanche's own template - the same callbacks, in the same order, with the same strategy state -
and every run gives the same numbers."""

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.templates.base_sgd import BaseSGDTemplate
from avalanche.training.templates.update_type.sgd_update import SGDUpdate

from clstm.run.runner import run_experiment
from clstm.strategies.lean import LeanIteration, LeanNaive, implements

CALLBACKS = [c for c in dir(SupervisedPlugin) if c.startswith(("before_", "after_"))]


class Recorder(SupervisedPlugin):
    """Records every callback with the strategy's state at that point."""

    def __init__(self):
        SupervisedPlugin.__init__(self)
        self.seen = []
        self.loss_shapes = set()  # of the loss where plugins see it (not compared)


def _record(callback):
    def hook(self, strategy, **kwargs):
        state = [callback, strategy.is_training, kwargs]
        clock = strategy.clock
        state.append((clock.train_iterations, clock.train_exp_epochs, clock.train_exp_counter))
        mbatch = getattr(strategy, "mbatch", None)
        if mbatch is not None and "iteration" in callback or "forward" in callback:
            state.append([tuple(t.shape) for t in mbatch])
            state.append(float(strategy.mb_x.sum()))
        if callback in ("after_forward", "after_eval_forward") or "backward" in callback:
            state.append(float(strategy.mb_output.detach().sum()))
        loss = getattr(strategy, "loss", None)
        if isinstance(loss, torch.Tensor) and (
            "iteration" in callback or "backward" in callback or "update" in callback
        ):
            state.append(float(loss.detach().sum()))
            if callback == "before_backward":
                self.loss_shapes.add(tuple(loss.shape))
        if "update" in callback:
            state.append(float(next(strategy.model.parameters()).detach().sum()))
            state.append(strategy.optimizer.param_groups[0]["lr"])
        self.seen.append(state)

    return hook


for _callback in CALLBACKS:
    setattr(Recorder, _callback, _record(_callback))


# Without a plugin on before_forward / after_forward the lean loop makes the loss the criterion's
# output itself, not Avalanche's zeros(1) + criterion: the same values must follow.
class NoForwardRecorder(SupervisedPlugin):
    """Records every callback but ``before_forward`` and ``after_forward``."""

    __init__ = Recorder.__init__


for _callback in CALLBACKS:
    if _callback not in ("before_forward", "after_forward"):
        setattr(NoForwardRecorder, _callback, _record(_callback))


def _avalanche_loops(monkeypatch):
    """Make every lean strategy run Avalanche's own loops (the reference)."""
    monkeypatch.setattr(LeanIteration, "training_epoch", SGDUpdate.training_epoch)
    monkeypatch.setattr(LeanIteration, "eval_epoch", BaseSGDTemplate.eval_epoch)


COPY = {
    "name": "tiny_copy", "device": "cpu",
    "benchmark": {"name": "copy", "n_experiences": 2, "n_train": 48, "n_test": 16},
    "model": {"type": "rnn", "hidden_size": 8},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "copy"),
    [("naive", False), ("replay", False), ("ewc", False), ("lwf", False), ("gem", False),
     ("mas", False), ("joint", False), ("der", True), ("replay", True), ("coresets", True)],
)  # fmt: skip
def test_callbacks_fire_as_in_avalanches_template(tmp_path, tiny_config, monkeypatch, strategy,
                                                   copy):  # fmt: skip
    cfg = {**(COPY if copy else tiny_config), "strategy": {"name": strategy}}
    lean, reference = _both_loops(cfg, Recorder, tmp_path, monkeypatch)
    assert lean.loss_shapes == reference.loss_shapes == {(1,)}  # Avalanche's loss, both ways


def _both_loops(cfg, recorder, tmp_path, monkeypatch):
    """Runs ``cfg`` with the lean loops, then with Avalanche's, each with a fresh recorder;
    checks both recorded the same callbacks and state and got the same accuracy matrix.

    Per-step models compute every step's output here: the lean loop's outputs at the target
    steps alone (clstm.strategies.lean.gathers_steps) are the same to float rounding only, and
    are compared with the all-steps computation in tests/test_models.py."""
    monkeypatch.setattr("clstm.strategies.lean.gathers_steps", lambda strategy: False)
    lean = recorder()
    fast = run_experiment(cfg, out=tmp_path / "lean", plugins=[lean])
    _avalanche_loops(monkeypatch)
    reference = recorder()
    slow = run_experiment(cfg, out=tmp_path / "avalanche", plugins=[reference])
    assert len(lean.seen) > 100
    assert lean.seen == reference.seen  # callbacks, order, arguments, strategy state
    np.testing.assert_array_equal(fast.accuracy_matrix, slow.accuracy_matrix)
    return lean, reference


@pytest.mark.parametrize(
    ("strategy", "copy"),
    [("naive", False), ("ewc", False), ("lwf", False), ("gem", False), ("mas", False),
     ("joint", False), ("replay", True)],
)  # fmt: skip
def test_the_loss_without_forward_listeners_is_the_criterions_with_the_same_values(
    tmp_path, tiny_config, monkeypatch, strategy, copy
):
    cfg = {**(COPY if copy else tiny_config), "strategy": {"name": strategy}}
    lean, reference = _both_loops(cfg, NoForwardRecorder, tmp_path, monkeypatch)
    assert lean.loss_shapes == {()} and reference.loss_shapes == {(1,)}


def test_only_callbacks_a_plugin_implements_are_called():
    class Partial(SupervisedPlugin):
        def before_forward(self, strategy, **kwargs):
            pass

    class Everything:  # answers every attribute, as Avalanche's EvaluationPlugin does
        def __getattribute__(self, name):
            return lambda *a, **k: None

    assert implements(Partial(), "before_forward")
    assert not implements(Partial(), "after_forward")  # BasePlugin's no-op: skipped
    assert implements(Everything(), "after_forward")
    plain = object()
    assert not implements(plain, "after_forward")


def test_a_strategy_with_its_own_loop_is_not_silently_replaced():
    from avalanche.training import DER

    with pytest.raises(TypeError, match="DER has its own training_epoch"):

        class LeanDER(LeanIteration, DER):
            pass

    assert issubclass(LeanNaive, LeanIteration)


def test_divergence_checked_every_n_iterations_restores_the_last_good_weights():
    # The GPU mode (check_every > 1: no host sync per step), exercised on the CPU.
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from clstm.data import synthetic
    from clstm.models import RecurrentEncoder, SequenceClassifier
    from clstm.plugins.divergence import DivergenceGuard, RunDiverged

    bench = synthetic.build(synthetic.Config(n_experiences=1, n_train=320, n_test=8, seq_len=5,
                                             n_features=3, n_classes=2))  # fmt: skip
    weights = {}

    class Poison(SupervisedPlugin):  # the loss of iteration 7 (1-based) is NaN
        def after_forward(self, strategy, **kwargs):
            if strategy.clock.train_epoch_iterations == 6:
                strategy.mb_output = strategy.mb_output * float("nan")

        def after_update(self, strategy, **kwargs):
            done = strategy.clock.train_epoch_iterations + 1  # the Clock counts after this
            weights[done] = [p.detach().clone() for p in strategy.model.parameters()]

    torch.manual_seed(0)
    model = SequenceClassifier(RecurrentEncoder(n_features=3, hidden_size=4), 2)
    strategy = Naive(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        train_mb_size=32, train_epochs=1, device="cpu", evaluator=EvaluationPlugin(loggers=[]),
        plugins=[Poison(), DivergenceGuard(check_every=4)],
    )  # fmt: skip
    with pytest.raises(RunDiverged, match="between iterations 5 and 8 .* restored to iteration 4"):
        strategy.train(bench.scenario.train_stream[0])
    assert any(torch.isnan(w).any() for w in weights[8])  # the NaN reached the weights ...
    for now, good in zip(model.parameters(), weights[4], strict=True):  # ... and was undone
        torch.testing.assert_close(now.detach(), good, rtol=0, atol=0)
