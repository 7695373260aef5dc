"""LSTMPlugin and AccuracyMatrixMetric inside real Avalanche strategies (a user's own script)."""

import io

import numpy as np
import pytest
import torch
from avalanche.training import EWC, Naive
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin

from clstm.data import synthetic
from clstm.models import RecurrentEncoder, SequenceClassifier
from clstm.plugins import AccuracyMatrixMetric, LSTMPlugin, lr_factor
from clstm.run.logging import ProgressLogger

EPOCHS = 3
LR0 = 0.02


@pytest.fixture(scope="module")
def bench():
    cfg = synthetic.Config(
        n_experiences=3, n_train=64, n_test=32, seq_len=6, n_features=4, n_classes=3
    )
    return synthetic.build(cfg)


def _model(stateful=False):
    torch.manual_seed(0)
    return SequenceClassifier(RecurrentEncoder(n_features=4, hidden_size=8, stateful=stateful), 3)


def _strategy(bench, plugins, *, model=None, cls=Naive, metrics=(), **kwargs):
    model = model if model is not None else _model()
    evaluator = EvaluationPlugin(
        *metrics, loggers=[ProgressLogger(bench.experience_names, stream=io.StringIO())]
    )
    return cls(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=LR0),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16,
        train_epochs=EPOCHS,
        eval_mb_size=32,
        device="cpu",
        plugins=plugins,
        evaluator=evaluator,
        **kwargs,
    )


class Recorder(SupervisedPlugin):
    """Calls ``fn(strategy)`` in the named hook and keeps what it returns."""

    def __init__(self, hook, fn):
        super().__init__()
        self.records = []
        setattr(self, hook, lambda strategy, **kw: self.records.append(fn(strategy)))


def _lr_record(strategy):
    clock = strategy.clock
    return clock.train_exp_counter, clock.train_exp_epochs, strategy.optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("schedule", ["exponential", "cosine", "step", "none"])
def test_lr_restarts_and_decays_per_experience(bench, schedule):
    probe = Recorder("before_training_epoch", _lr_record)
    plugin = LSTMPlugin(lr_schedule=schedule, lr_step_size=1, lr_gamma=0.5)
    strategy = _strategy(bench, [plugin, probe])
    for experience in bench.scenario.train_stream:
        strategy.train(experience)
    assert [(e, k) for e, k, _ in probe.records] == [
        (e, k) for e in range(3) for k in range(EPOCHS)
    ]
    for _, epoch, lr in probe.records:
        assert lr == pytest.approx(LR0 * lr_factor(schedule, epoch, EPOCHS, step_size=1, gamma=0.5))


def test_exponential_formula_explicitly():
    assert lr_factor("exponential", 2, 4) == pytest.approx(np.exp(-0.5))
    assert lr_factor("cosine", 2, 4) == pytest.approx(0.5)
    assert lr_factor("step", 5, 4, step_size=2, gamma=0.1) == pytest.approx(0.01)


def test_lr_schedule_also_applies_inside_ewc(bench):
    probe = Recorder("before_training_epoch", _lr_record)
    strategy = _strategy(bench, [LSTMPlugin(), probe], cls=EWC, ewc_lambda=1.0)
    for experience in list(bench.scenario.train_stream)[:2]:
        strategy.train(experience)
    assert [lr for _, _, lr in probe.records] == pytest.approx(
        [LR0 * np.exp(-k / EPOCHS) for _ in range(2) for k in range(EPOCHS)]
    )


def _adam_step(strategy):
    state = strategy.optimizer.state.get(strategy.model.head.weight, {})
    return strategy.clock.train_exp_counter, int(state["step"]) if "step" in state else None


@pytest.mark.parametrize("mode", ["reset", "keep"])
def test_optimizer_state_reset_or_kept(bench, mode):
    # Recorded after the first update of each experience: Adam's step counter is 1 after a
    # reset, and continues from the previous experience when kept.
    probe = Recorder("after_update", _adam_step)
    strategy = _strategy(bench, [LSTMPlugin(optimizer_state=mode), probe])
    for experience in list(bench.scenario.train_stream)[:2]:
        strategy.train(experience)
    per_exp = 64 // 16 * EPOCHS
    first_of_second = probe.records[per_exp]
    assert probe.records[0] == (0, 1)
    assert first_of_second == (1, 1 if mode == "reset" else per_exp + 1)


def _grad_norm(strategy):
    grads = [p.grad.norm() for p in strategy.model.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(grads)))


def test_gradient_norm_is_clipped_before_the_update(bench):
    before = Recorder("before_update", _grad_norm)
    after = Recorder("before_update", _grad_norm)
    strategy = _strategy(bench, [before, LSTMPlugin(grad_clip=0.05), after])
    strategy.train(bench.scenario.train_stream[0])
    assert max(before.records) > 0.05  # clipping had something to do
    assert max(after.records) <= 0.05 + 1e-6


def test_no_clipping_when_disabled(bench):
    before = Recorder("before_update", _grad_norm)
    after = Recorder("before_update", _grad_norm)
    strategy = _strategy(bench, [before, LSTMPlugin(grad_clip=None), after])
    strategy.train(bench.scenario.train_stream[0])
    assert after.records == pytest.approx(before.records)


def test_recurrent_state_is_reset_at_every_experience_boundary(bench):
    model = _model(stateful=True)
    has_state = lambda s: s.model.encoder.state is not None  # noqa: E731
    ends = [Recorder(h, has_state) for h in ("after_training_exp", "after_eval_exp")]
    starts = [Recorder(h, has_state) for h in ("before_training_exp", "before_eval_exp")]
    strategy = _strategy(bench, [LSTMPlugin(), *starts, *ends], model=model)
    for experience in list(bench.scenario.train_stream)[:2]:
        strategy.train(experience)
        strategy.eval(bench.scenario.test_stream)
    assert all(r.records and all(r.records) for r in ends)  # there was state to leak ...
    assert all(r.records and not any(r.records) for r in starts)  # ... and it never did


def _accuracy(model, experience):
    x, y, *_ = next(iter(torch.utils.data.DataLoader(experience.dataset, batch_size=10_000)))
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _manual_matrix(strategy, bench, **train_kwargs):
    """Train like a user script would; compute every accuracy by hand alongside."""
    model, tests = strategy.model, list(bench.scenario.test_stream)
    strategy.eval(bench.scenario.test_stream)
    rows = [[_accuracy(model.eval(), e) for e in tests]]
    for experience in bench.scenario.train_stream:
        strategy.train(experience, **train_kwargs)
        strategy.eval(bench.scenario.test_stream)
        rows.append([_accuracy(model.eval(), e) for e in tests])
    return np.array(rows)


def test_accuracy_matrix_metric_in_a_plain_avalanche_script(bench):
    matrix = AccuracyMatrixMetric()
    strategy = _strategy(bench, [LSTMPlugin()], metrics=[matrix])
    expected = _manual_matrix(strategy, bench)
    initial, R = matrix.result()
    np.testing.assert_allclose(initial, expected[0])
    np.testing.assert_allclose(R, expected[1:])
    assert R.shape == (3, 3)
    assert not np.allclose(R, R[0])  # the model changed between rows


def test_accuracy_matrix_ignores_periodic_evaluation_during_training(bench):
    matrix = AccuracyMatrixMetric()
    strategy = _strategy(bench, [LSTMPlugin()], metrics=[matrix], eval_every=1)
    # Avalanche evaluates the given streams after every epoch while training.
    expected = _manual_matrix(strategy, bench, eval_streams=[bench.scenario.test_stream])
    initial, R = matrix.result()
    np.testing.assert_allclose(initial, expected[0])
    np.testing.assert_allclose(R, expected[1:])


def test_lstm_plugin_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'"):
        LSTMPlugin(lr_schedule="linear")
    with pytest.raises(ValueError, match="optimizer_state must be one of reset, keep"):
        LSTMPlugin(optimizer_state="clear")
    with pytest.raises(ValueError, match="grad_clip must be > 0"):
        LSTMPlugin(grad_clip=0)


def test_orthogonal_penalty_sums_each_gate_of_each_recurrent_matrix():
    from torch import nn

    from clstm.plugins.orthogonal import orthogonal_penalty

    lstm = nn.LSTM(2, 3, num_layers=2)
    eye = torch.eye(3)
    with torch.no_grad():  # gates: I (0), 2I (||4I - I||^2 = 27), 0 (||-I||^2 = 3), I (0)
        lstm.weight_hh_l0.copy_(torch.cat([eye, 2 * eye, 0 * eye, eye]))
        lstm.weight_hh_l1.copy_(torch.cat([eye, eye, eye, eye]))  # orthogonal: 0
    assert orthogonal_penalty(lstm).item() == pytest.approx(30.0)
    assert orthogonal_penalty(nn.Linear(2, 2)).item() == 0.0


def test_orthogonal_reg_keeps_recurrent_weights_near_orthogonal(tmp_path, tiny_config):
    from avalanche.core import SupervisedPlugin

    from clstm.plugins.orthogonal import orthogonal_penalty
    from clstm.run.runner import run_experiment

    penalties = {}

    class Probe(SupervisedPlugin):
        def after_training(self, strategy, **kw):
            penalties[strength] = orthogonal_penalty(strategy.model).item()

    for strength in (0.0, 1.0):
        tiny_config["train"] = {**tiny_config.get("train", {}), "orthogonal_reg": strength}
        run_experiment(tiny_config, out=tmp_path / str(strength), plugins=[Probe()])
    assert penalties[1.0] < 0.5 * penalties[0.0], penalties
