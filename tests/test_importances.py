"""The importance estimates of EWC and SI beyond Avalanche's defaults (Ehret et al. 2021's
variants), checked against independent computations."""

import copy

import numpy as np
import pytest
import torch

from clstm.config import load_config
from clstm.data import copy_task, synthetic
from clstm.models import build_model
from clstm.plugins import si as si_module
from clstm.plugins.ewc import RecurrentEWCPlugin
from clstm.plugins.si import TorchSIPlugin, would_be_update
from clstm.run.runner import run_experiment
from clstm.targets import criterion as criterion_of


def _bench(kind):
    if kind == "sequence":  # variable lengths 3..9: padding would enter a batched pass
        return synthetic.build(
            synthetic.Config(n_experiences=2, n_train=40, n_test=8, seq_len=(3, 9), n_features=4,
                             scenario="task")
        )  # fmt: skip
    return copy_task.build(copy_task.Config(n_experiences=2, n_train=40, n_test=8, scenario="task"))


def _importances(plugin, model, bench, batch_size):
    from avalanche.models.utils import avalanche_model_adaptation

    experience = bench.scenario.train_stream[0]
    avalanche_model_adaptation(model, experience)  # the heads for its classes, as training does
    dataset = experience.dataset
    loss = criterion_of(getattr(bench, "target", "sequence"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = plugin.compute_importances(
        model, loss, optimizer, dataset, torch.device("cpu"), batch_size
    )
    return {name: imp.data.clone() for name, imp in result.items()}


@pytest.mark.parametrize("kind", ["sequence", "per_step_bits"])
def test_per_sample_fisher_is_the_mean_of_each_samples_squared_gradient(kind):
    # Avalanche's estimate with mini-batches of one sample *is* the empirical Fisher; the
    # per-sample estimate must equal it whatever batch it reads the data in.
    bench = _bench(kind)
    torch.manual_seed(0)
    model = build_model(load_config({}, ["model.hidden_size=8"]).model, benchmark=bench)
    reference = _importances(RecurrentEWCPlugin(ewc_lambda=1.0), model, bench, batch_size=1)
    ours = _importances(
        RecurrentEWCPlugin(ewc_lambda=1.0, fisher="per_sample"), model, bench, batch_size=16
    )
    assert set(ours) == set(reference)
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-4, atol=1e-8)
    # Avalanche's default (squared gradients of batch means) is smaller: gradients cancel.
    batch = _importances(RecurrentEWCPlugin(ewc_lambda=1.0), model, bench, batch_size=16)
    total = lambda imps: sum(float(v.sum()) for v in imps.values())  # noqa: E731
    assert total(batch) < 0.5 * total(ours)
    assert model.training  # the pass restores the training mode


def test_unknown_fisher_estimate_is_refused():
    with pytest.raises(ValueError, match="fisher must be one of"):
        RecurrentEWCPlugin(ewc_lambda=1.0, fisher="exact")


def _step_and_compare(optimizer, params, steps_before=2):
    for _ in range(steps_before):  # some optimizer state first
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()
    grads = [torch.randn_like(p) for p in params]
    predicted = would_be_update(optimizer, params, grads)
    state = copy.deepcopy(optimizer.state_dict())
    before = [p.detach().clone() for p in params]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    optimizer.step()
    for p, b, step in zip(params, before, predicted, strict=True):
        torch.testing.assert_close(step, p.detach() - b, rtol=1e-5, atol=1e-7)
    return state


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
        lambda ps: torch.optim.Adam(ps, lr=0.003),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
        lambda ps: torch.optim.SGD(ps, lr=0.05),
    ],
)
def test_would_be_update_is_the_step_the_optimizer_then_makes(make):
    torch.manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    optimizer = make(params)
    _step_and_compare(optimizer, params, steps_before=0)  # from an empty state
    _step_and_compare(optimizer, params, steps_before=2)


def test_would_be_update_leaves_the_optimizer_state_alone():
    params = [torch.nn.Parameter(torch.randn(3))]
    optimizer = torch.optim.Adam(params, lr=0.01)
    params[0].grad = torch.ones(3)
    optimizer.step()
    state = copy.deepcopy(optimizer.state_dict())
    would_be_update(optimizer, params, [torch.randn(3)])
    after = optimizer.state_dict()
    assert after["state"][0]["step"] == state["state"][0]["step"]
    torch.testing.assert_close(after["state"][0]["exp_avg"], state["state"][0]["exp_avg"])


def test_would_be_update_refuses_other_optimizers():
    params = [torch.nn.Parameter(torch.randn(3))]
    with pytest.raises(ValueError, match="neither"):
        would_be_update(torch.optim.RMSprop(params), params, [torch.ones(3)])


def _si_after_one_experience(**options):
    """A plugin whose path integral and anchors are set by hand for one weight vector."""
    model = torch.nn.Linear(4, 1, bias=False)
    plugin = TorchSIPlugin(si_lambda=1.0, eps=0.5, **options)
    plugin.create_syn_data(model, plugin.ewc_data, plugin.syn_data, plugin.excluded_parameters)
    name = "weight"
    plugin.ewc_data[0][name].data = torch.zeros(4)  # anchor: the weights at the start
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0, 2.0, 0.5]]))  # delta theta
    # path integrals (Avalanche's sign: grad * step, negative when the loss went down)
    plugin.syn_data["trajectory"][name].data = torch.tensor([-3.0, -0.3, 1.0, -0.0003])
    plugin._update_importance(model, clip_to=plugin.max_importance, c=1, eps=plugin.eps)
    return plugin.ewc_data[1][name].data


def test_si_importance_cap_and_sign_options_hand_computed():
    # importance = -trajectory / (delta^2 + eps), eps = 0.5
    raw = torch.tensor([3.0 / 1.5, 0.3 / 1.5, -1.0 / 4.5, 0.0003 / 0.75])
    torch.testing.assert_close(_si_after_one_experience(), raw.clamp(max=0.001))  # Avalanche's
    torch.testing.assert_close(_si_after_one_experience(max_importance=None), raw)
    torch.testing.assert_close(
        _si_after_one_experience(max_importance=None, nonnegative=True), raw.clamp(min=0)
    )


def _run_si(tmp_path, plugins=(), train=None, **options):
    trajectories = []

    from avalanche.training.plugins import SupervisedPlugin

    class Probe(SupervisedPlugin):  # runs before SI's own after_training_exp
        def after_training_exp(self, strategy, **kw):
            si = next(p for p in strategy.plugins if isinstance(p, TorchSIPlugin))
            trajectories.append({n: t.data.clone() for n, t in si.syn_data["trajectory"].items()})

    cfg = {
        "name": "si_tl", "device": "cpu",
        "benchmark": {"name": "synthetic", "n_experiences": 2, "n_train": 48, "n_test": 8,
                      "seq_len": [3, 9], "n_features": 4, "scenario": "task"},
        "strategy": {"name": "si", "si_lambda": 1.0, **options}, "model": {"hidden_size": 8},
        "train": {"epochs": 1, "batch_size": 16, "lr": 0.05, "optimizer": "sgd",
                  "grad_clip": None, "lr_schedule": "none", **(train or {})},
    }  # fmt: skip
    result = run_experiment(cfg, out=tmp_path, plugins=[*plugins, Probe()], quiet=True)
    assert result.status == "completed", result.error
    return trajectories, result


def test_si_task_loss_only_path_integral(tmp_path):
    # With plain SGD, no clipping and no penalty yet (first experience), the update the task
    # loss alone would make is the update made: both path integrals must agree.
    plain, _ = _run_si(tmp_path / "a")
    task_only, result = _run_si(tmp_path / "b", task_loss_only=True)
    first_plain, first_task = plain[0], task_only[0]
    assert any(float(t.abs().sum()) > 0 for t in first_task.values())
    for name in first_plain:
        torch.testing.assert_close(first_task[name], first_plain[name], rtol=1e-4, atol=1e-9)
    # From the second experience the penalty's gradient enters only the default's integral.
    differs = [not torch.allclose(task_only[1][n], plain[1][n]) for n in plain[1]]
    assert any(differs)
    assert result.accuracy_matrix.shape == (2, 2)


def test_si_task_gradient_takes_one_backward_pass_and_the_same_values(tmp_path, monkeypatch):
    from avalanche.training.plugins import SupervisedPlugin

    class Rebind(SupervisedPlugin):  # the same loss, as a new tensor: SI cannot take it as the
        def before_backward(self, strategy, **kw):  # task loss and takes a second pass
            strategy.loss = strategy.loss * 1.0

    flows = []

    class Passes(SupervisedPlugin):  # counts the backward passes that reach the model's output
        def before_backward(self, strategy, **kw):  # from here on
            flows.append(0)
            strategy.mb_output.register_hook(lambda grad: flows.__setitem__(-1, flows[-1] + 1))

    adam = {"optimizer": "adam", "lr": 0.01, "epochs": 2}
    # SI comes after these plugins: the passes are counted from before its own
    once, a = _run_si(tmp_path / "once", plugins=[Passes()], train=adam, task_loss_only=True)
    assert flows and set(flows) == {1}  # SI's pass for the task gradient, and no other
    flows.clear()
    twice, b = _run_si(
        tmp_path / "twice", plugins=[Rebind(), Passes()], train=adam, task_loss_only=True
    )
    assert flows and set(flows) == {2}  # where SI cannot take the loss as the task loss
    np.testing.assert_allclose(a.accuracy_matrix, b.accuracy_matrix, atol=1e-6)
    for first, second in zip(once, twice, strict=True):
        for name in first:
            torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-9)
    assert any(float(t.abs().sum()) > 0 for t in once[1].values())
    # With the orthogonal regulariser SI comes before it (and before these plugins): the
    # strategy's backward pass, which adds the penalties' gradients, stays out of the model
    flows.clear()
    orth = {**adam, "orthogonal_reg": 1.0}
    once, a = _run_si(tmp_path / "orth", plugins=[Passes()], train=orth, task_loss_only=True)
    assert flows and set(flows) == {0}
    monkeypatch.setattr(si_module, "_loss_is_the_task_loss", lambda strategy: False)
    twice, b = _run_si(tmp_path / "orth2", train=orth, task_loss_only=True)  # two passes
    np.testing.assert_allclose(a.accuracy_matrix, b.accuracy_matrix, atol=1e-6)
    for first, second in zip(once, twice, strict=True):
        for name in first:
            torch.testing.assert_close(first[name], second[name], rtol=1e-5, atol=1e-9)


def test_fisher_from_a_random_subset_of_samples():
    bench = _bench("sequence")
    torch.manual_seed(0)
    model = build_model(load_config({}, ["model.hidden_size=8"]).model, benchmark=bench)
    everything = _importances(  # first: the heads grow (drawing random numbers) only once
        RecurrentEWCPlugin(ewc_lambda=1.0, fisher="per_sample"), model, bench, batch_size=16
    )
    plugin = RecurrentEWCPlugin(ewc_lambda=1.0, fisher="per_sample", fisher_samples=5)
    torch.manual_seed(3)
    five = _importances(plugin, model, bench, batch_size=16)
    torch.manual_seed(3)  # the subset is drawn from torch's generator: reproducible
    again = _importances(plugin, model, bench, batch_size=16)
    assert all(torch.equal(five[n], again[n]) for n in five)
    assert any(not torch.allclose(five[n], everything[n]) for n in five)


def test_fisher_samples_without_the_per_sample_estimate_is_refused():
    from clstm.config import ConfigError

    with pytest.raises(ConfigError, match="fisher_samples needs strategy.fisher: per_sample"):
        load_config({"strategy": {"name": "ewc", "fisher_samples": 200}})
    with pytest.raises(ValueError, match="fisher_samples"):
        RecurrentEWCPlugin(ewc_lambda=1.0, fisher_samples=200)
