"""Every strategy on a variable-length stream: a valid accuracy matrix and its mechanism at work."""

import copy
import json
import warnings

import numpy as np
import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin, SynapticIntelligencePlugin

from clstm.config import ConfigError
from clstm.data.batches import stacked
from clstm.run.runner import run_experiment
from clstm.strategies import STRATEGIES

STREAM = {
    "name": "synthetic", "n_experiences": 3, "n_train": 48, "n_test": 24, "seq_len": [3, 9],
    "n_features": 4, "n_classes": 3,
}  # fmt: skip


def _run(tmp_path, strategy, scenario="task", probe=None, **params):
    cfg = {
        "name": f"s_{strategy}", "device": "cpu", "benchmark": {**STREAM, "scenario": scenario},
        "strategy": {"name": strategy, **params}, "model": {"hidden_size": 8},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.01}, "eval": {"batch_size": 64},
    }  # fmt: skip
    result = run_experiment(cfg, out=tmp_path, plugins=[probe] if probe else [])
    assert result.status == "completed", result.error
    return result


def _valid(result, rows="all"):
    R = result.accuracy_matrix
    assert R.shape == (3, 3)
    measured = R if rows == "all" else R[-1:]
    assert np.all((measured >= 0) & (measured <= 1))
    return R


class Probe(SupervisedPlugin):
    """Records ``fn(strategy)`` in a hook; runs before the method's own plugin."""

    def __init__(self, **hooks):
        super().__init__()
        self.records = {hook: [] for hook in hooks}
        for hook, fn in hooks.items():
            setattr(self, hook, self._recorder(hook, fn))

    def _recorder(self, hook, fn):
        return lambda strategy, **kw: self.records[hook].append(fn(strategy))


def _plugin(strategy, kind):
    return next(p for p in strategy.plugins if type(p).__name__ == kind)


def _task_labels(dataset):
    return sorted(set(dataset.targets_task_labels)) if len(dataset) else []


class LossDelta(SupervisedPlugin):
    """Loss before and after the method's ``before_backward`` (its penalty), per experience."""

    def __init__(self):
        super().__init__()
        self.loss_in, self.delta = None, {}

    def before_backward(self, strategy, **kw):
        self.loss_in = float(strategy.loss.detach())

    def after_backward(self, strategy, **kw):
        k = strategy.clock.train_exp_counter
        self.delta.setdefault(k, []).append(float(strategy.loss.detach()) - self.loss_in)


def test_every_registered_strategy_has_a_test():
    tested = {name[len("test_") :].split("_")[0] for name in globals() if name.startswith("test_")}
    assert set(STRATEGIES) <= tested


def test_naive(tmp_path):
    _valid(_run(tmp_path, "naive"))


def test_joint_trains_once_on_everything(tmp_path):
    probe = Probe(before_training_exp=lambda s: len(s.adapted_dataset))
    result = _run(tmp_path, "joint", probe=probe)
    assert probe.records["before_training_exp"] == [3 * 48]  # one training run on all data
    R = _valid(result, rows="last")
    assert np.isnan(R[:-1]).all()  # no intermediate models: those rows are not measured
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["acc"] == pytest.approx(R[-1].mean()) and m["bwt"] is None
    assert m["accuracy_matrix"][0] == [None, None, None]


def test_cumulative_trains_on_all_data_so_far(tmp_path):
    probe = Probe(before_training_exp=lambda s: len(s.adapted_dataset))
    _valid(_run(tmp_path, "cumulative", probe=probe))
    assert probe.records["before_training_exp"] == [48, 96, 144]


@pytest.mark.parametrize("policy", ["class_balanced", "reservoir"])
def test_replay_buffer_holds_earlier_experiences_within_budget(tmp_path, policy):
    buffer = lambda s: _plugin(s, "QuietReplayPlugin").storage_policy.buffer  # noqa: E731
    probe = Probe(before_training_exp=lambda s: (len(buffer(s)), _task_labels(buffer(s))))
    _valid(_run(tmp_path, "replay", probe=probe, mem_size=30, policy=policy))
    sizes_tasks = probe.records["before_training_exp"]
    assert sizes_tasks[0] == (0, [])
    assert sizes_tasks[1][0] == 30 and sizes_tasks[1][1] == [0]
    assert sizes_tasks[2][0] <= 30 and sizes_tasks[2][1] == [0, 1]


def test_replay_does_not_warn_every_experience(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(tmp_path, "replay")
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize("mode", ["separate", "online"])
def test_ewc_penalty_is_zero_then_positive(tmp_path, mode):
    delta = LossDelta()
    _valid(_run(tmp_path, "ewc", probe=delta, mode=mode))
    assert max(delta.delta[0]) == 0  # nothing to protect while learning the first experience
    for k in (1, 2):  # then positive once the weights leave the anchor (after the first update)
        assert min(delta.delta[k][1:]) > 0
    if mode == "separate":  # experience 2 starts exactly at its only anchor (end of experience 1)
        assert delta.delta[1][0] == pytest.approx(0, abs=1e-7)


def test_ewc_importance_pass_runs_without_cudnn():
    from clstm.plugins.ewc import RecurrentEWCPlugin

    seen = []

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x):
            seen.append(torch.backends.cudnn.enabled)
            return self.linear(x)

    from avalanche.benchmarks.utils.utils import as_classification_dataset

    class Data(torch.utils.data.Dataset):
        targets = [0, 1, 0, 1]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.randn(3), self.targets[i], 0

    model = Model()
    RecurrentEWCPlugin(ewc_lambda=1.0).compute_importances(
        model, torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
        as_classification_dataset(Data()), torch.device("cpu"), batch_size=2,
    )  # fmt: skip
    assert seen == [False, False] and torch.backends.cudnn.enabled


def test_si_penalty_is_zero_then_positive(tmp_path):
    delta = LossDelta()
    _valid(_run(tmp_path, "si", probe=delta))
    assert max(delta.delta[0]) == 0 and min(delta.delta[1][1:]) > 0


def test_si_importance_matches_avalanches_formula(tmp_path):
    # The probe runs before SI's own after_training_exp: it copies the state SI then updates.
    snapshot = lambda s: (copy.deepcopy(_plugin(s, "TorchSIPlugin")), copy.deepcopy(s.model))  # noqa: E731
    probe = Probe(after_training_exp=snapshot, after_training=lambda s: _plugin(s, "TorchSIPlugin"))
    _run(tmp_path, "si", probe=probe)
    reference, model = probe.records["after_training_exp"][-1]
    ours = probe.records["after_training"][-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # NumPy's: the reason for the fix
        SynapticIntelligencePlugin.update_ewc_data(
            model, reference.ewc_data, reference.syn_data, 0.001,
            reference.excluded_parameters, 1, eps=reference.eps,
        )  # fmt: skip
    assert ours.ewc_data[1]
    for name, importance in ours.ewc_data[1].items():
        torch.testing.assert_close(importance.data, reference.ewc_data[1][name].data)
        torch.testing.assert_close(ours.ewc_data[0][name].data, reference.ewc_data[0][name].data)
    assert any(float(i.data.abs().sum()) > 0 for i in ours.ewc_data[1].values())


def test_avalanches_si_learns_no_importance_on_cpu_but_ours_does(tmp_path):
    from avalanche.training import SynapticIntelligence

    from clstm.config import load_config
    from clstm.data import synthetic
    from clstm.models import build_model

    bench = synthetic.build(synthetic.Config(n_experiences=1, n_train=48, seq_len=(3, 9)))
    importance = {}
    for kind in ("avalanche", "clstm"):
        torch.manual_seed(0)
        model = build_model(load_config({}, ["model.hidden_size=8"]).model, benchmark=bench)
        common = dict(
            model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            criterion=torch.nn.CrossEntropyLoss(), train_mb_size=16, device="cpu",
            evaluator=_quiet_evaluator(),
        )  # fmt: skip
        if kind == "avalanche":
            strategy = SynapticIntelligence(si_lambda=1.0, **common)
            plugin = _plugin(strategy, "SynapticIntelligencePlugin")
        else:
            from avalanche.training import Naive

            from clstm.plugins.si import TorchSIPlugin

            plugin = TorchSIPlugin(si_lambda=1.0)
            strategy = Naive(plugins=[plugin], **common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            strategy.train(bench.scenario.train_stream[0])
        importance[kind] = sum(float(v.data.abs().sum()) for v in plugin.ewc_data[1].values())
    assert importance["avalanche"] == 0.0  # the bug: weight snapshots are views on the CPU
    assert importance["clstm"] > 0.0


def _quiet_evaluator():
    import io

    from avalanche.training.plugins import EvaluationPlugin

    from clstm.run.logging import ProgressLogger

    return EvaluationPlugin(loggers=[ProgressLogger(["x"], stream=io.StringIO())])


def test_si_update_does_not_warn(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(tmp_path, "si")
    assert not [w for w in caught if "array_wrap" in str(w.message)]


def test_mas_penalty_is_zero_then_positive(tmp_path):
    delta = LossDelta()
    _valid(_run(tmp_path, "mas", probe=delta))
    assert max(delta.delta[0]) == 0 and min(delta.delta[1][1:]) > 0


@pytest.mark.parametrize("scenario", ["domain", "task"])
def test_lwf_distills_from_the_previous_model(tmp_path, scenario):
    delta = LossDelta()
    lwf = lambda s: _plugin(s, "LwFPlugin").lwf  # noqa: E731
    classes = Probe(after_training=lambda s: dict(lwf(s).prev_classes_by_task))
    _valid(_run(tmp_path, "lwf", scenario=scenario, probe=delta))
    # No teacher in the first experience; then the student drifts from it after the first update.
    assert max(delta.delta[0]) == 0 and min(delta.delta[1][1:]) > 0
    _valid(_run(tmp_path / "b", "lwf", scenario=scenario, probe=classes))
    seen = classes.records["after_training"][-1]  # classes per task, without task labels: task 0
    assert set(seen) == ({0} if scenario == "domain" else {0, 1, 2})
    assert all(seen[t] == {0, 1, 2} for t in seen)


def test_gem_stores_patterns_and_projects_gradients(tmp_path):
    gem = lambda s: _plugin(s, "GEMPlugin")  # noqa: E731
    probe = Probe(
        before_training_exp=lambda s: sorted(gem(s).memory_x),
        after_training_exp=lambda s: tuple(gem(s).G.shape) if hasattr(gem(s), "G") else None,
    )
    _valid(_run(tmp_path, "gem", probe=probe, patterns_per_exp=20))
    assert probe.records["before_training_exp"] == [[], [0], [0, 1]]
    assert probe.records["after_training_exp"][2][0] == 2  # reference gradients of 2 experiences


def test_agem_keeps_a_memory_and_a_reference_gradient(tmp_path):
    agem = lambda s: _plugin(s, "AGEMPlugin")  # noqa: E731
    probe = Probe(
        before_training_exp=lambda s: len(agem(s).buffers),
        after_training_iteration=lambda s: agem(s).reference_gradients is not None,
    )
    _valid(_run(tmp_path, "agem", probe=probe, patterns_per_exp=20, sample_size=10))
    assert probe.records["before_training_exp"] == [0, 1, 2]
    per_exp = len(probe.records["after_training_iteration"]) // 3
    assert any(probe.records["after_training_iteration"][per_exp:])


def test_gdumb_trains_on_its_balanced_bounded_memory(tmp_path):
    buffer = lambda s: _plugin(s, "QuietGDumbPlugin").storage_policy.buffer  # noqa: E731
    probe = Probe(
        after_training_exp=lambda s: (len(buffer(s)), _task_labels(buffer(s))),
        before_training_exp=lambda s: len(s.adapted_dataset) == len(buffer(s)) > 0,
    )
    _valid(_run(tmp_path, "gdumb", scenario="domain", probe=probe, mem_size=30))
    assert probe.records["after_training_exp"][-1][0] <= 30
    assert all(probe.records["before_training_exp"])  # the training data is the memory


def _split_digits(tmp_path, strategy):
    cfg = {
        "device": "cpu", "benchmark": {"name": "seq_digits", "n_experiences": 5, "test_size": 0.5},
        "strategy": {"name": strategy}, "model": {"hidden_size": 32},
        "train": {"epochs": 5, "lr": 0.01},
    }  # fmt: skip
    result = run_experiment(cfg, out=tmp_path)
    assert result.status == "completed", result.error
    return result.accuracy_matrix


def test_gdumb_keeps_earlier_classes_in_class_incremental_learning(tmp_path):
    R = _split_digits(tmp_path, "gdumb")
    # Earlier digits are still answered at the end (naive, or GDumb training on the current
    # experience only, scores exactly 0 on them); single rows vary: GDumb retrains from scratch.
    assert R[-1, :-1].mean() > 0.2 and np.count_nonzero(R[-1, :-1]) >= 3


def test_der_learns_new_classes_despite_masked_stored_logits(tmp_path):
    R = _split_digits(tmp_path, "der")
    assert np.all(np.diag(R)[1:] > 0.7)  # without the fix each new pair stays at chance (0.5)


def test_herding_keeps_earlier_classes_in_class_incremental_learning(tmp_path):
    R = _split_digits(tmp_path, "herding")
    # naive scores exactly 0 on earlier digits here; herding's exemplars keep them answered
    assert R[-1, :-1].mean() > 0.3 and np.count_nonzero(R[-1, :-1]) == 4


def test_fasticarl_keeps_earlier_classes_with_its_nearest_mean_classifier(tmp_path):
    R = _split_digits(tmp_path, "fasticarl")
    assert R[-1, :-1].mean() > 0.3 and np.count_nonzero(R[-1, :-1]) == 4


def test_clops_keeps_earlier_classes_by_replaying_its_most_important_sequences(tmp_path):
    R = _split_digits(tmp_path, "clops")
    assert R[-1, :-1].mean() > 0.3 and np.count_nonzero(R[-1, :-1]) == 4


def test_aser_keeps_earlier_classes_by_shapley_replay(tmp_path):
    R = _split_digits(tmp_path, "aser")
    assert R[-1, :-1].mean() > 0.3 and np.count_nonzero(R[-1, :-1]) == 4


def test_hnet_generates_every_weight_and_keeps_earlier_tasks(tmp_path):
    """On the tiny Copy Task: the model's own weights are buffers, the hypernetwork is what the
    optimizer trains, and the regulariser is on from the second experience."""
    from test_targets import TINY_COPY

    probe = Probe(before_training_exp=lambda s: (
        sum(p.numel() for p in s.model.parameters()),
        sum(p.numel() for group in s.optimizer.param_groups for p in group["params"]),
        sorted(_plugin(s, "HNETPlugin").kept)))  # fmt: skip
    cfg = {**TINY_COPY, "strategy": {"name": "hnet", "chunk_size": 200, "hidden": [10]}}
    result = run_experiment(cfg, out=tmp_path, plugins=[probe])
    assert result.status == "completed", result.error
    records = probe.records["before_training_exp"]
    assert all(n == m == records[0][0] for n, m, _ in records)  # the optimizer's: the hnet's
    # the probe runs before the plugin's own before_training_exp: the tasks kept so far
    assert [kept for _, _, kept in records] == [[], [], [0]]


def test_derpp_is_der_with_tscils_weights(tmp_path):
    probe = Probe(before_training_exp=lambda s: (type(s).__name__, s.alpha, s.beta, s.mem_size))
    _valid(_run(tmp_path, "derpp", scenario="domain", probe=probe))
    assert probe.records["before_training_exp"][0] == ("DER", 0.5, 0.5, 200)


@pytest.mark.parametrize("scenario", ["domain", "class"])
def test_dt2w_without_its_own_terms_is_lwf(tmp_path, scenario):
    """With the soft-DTW and prototype terms off, DT2W's loss is LwF's: the same run, bitwise."""
    off = {"fmap": 0.0, "proto_aug": 0.0}
    if scenario == "class":
        lwf = run_experiment(_run_scenario_config("lwf"), out=tmp_path / "lwf").accuracy_matrix
        dt2w = run_experiment(_run_scenario_config("dt2w", off), out=tmp_path / "dt2w")
    else:
        lwf = _run(tmp_path / "lwf", "lwf", scenario="domain").accuracy_matrix
        dt2w = _run(tmp_path / "dt2w", "dt2w", scenario="domain", **off)
    np.testing.assert_array_equal(dt2w.accuracy_matrix, lwf)


def test_der_masked_logits_are_left_out_of_the_logit_matching():
    from types import SimpleNamespace

    from clstm.plugins.der import DERMaskedLogitsPlugin

    stored = torch.tensor([[2.0, -1000.0, -1000.0], [0.5, 1.5, -1000.0]])
    output = torch.tensor([[1.0, 3.0, 4.0], [0.0, 1.0, 2.0], [9.0, 9.0, 9.0]])
    strategy = SimpleNamespace(batch_logits=stored, replay_loader=object(), mb_output=output)
    DERMaskedLogitsPlugin().after_forward(strategy)
    expected = torch.tensor([[2.0, 3.0, 4.0], [0.5, 1.5, 2.0]])
    torch.testing.assert_close(strategy.batch_logits, expected)


def test_der_replays_stored_logits(tmp_path):
    probe = Probe(before_training_exp=lambda s: len(s.storage_policy.buffer))  # DER's own buffer
    result = _run(tmp_path, "der", scenario="domain", probe=probe, mem_size=30)
    _valid(result)
    assert probe.records["before_training_exp"][0] == 0
    assert 0 < probe.records["before_training_exp"][1] <= 30


@pytest.mark.parametrize("scenario", ["task", "domain"])
def test_coresets_keep_a_coreset_per_experience_with_the_latest_model_as_teacher(
    tmp_path, scenario
):
    from avalanche.models.utils import avalanche_forward

    def coresets(strategy):  # before experience k: k coresets, every one taught by the model now
        kept = _plugin(strategy, "CoresetDistillationPlugin").coresets
        with torch.no_grad():
            strategy.model.eval()
            now = [avalanche_forward(strategy.model, x, t) for x, _, t, _ in kept]
            strategy.model.train()
        for (*_, soft), out in zip(kept, now, strict=True):
            torch.testing.assert_close(soft, out, atol=1e-6, rtol=0)
        return [(len(x), sorted(set(t.tolist()))) for x, _, t, _ in kept]

    delta, probe = LossDelta(), Probe(before_training_exp=coresets)
    _valid(_run(tmp_path, "coresets", scenario=scenario, probe=probe, coreset_size=20))
    tasks = [[0], [1]] if scenario == "task" else [[0], [0]]
    assert probe.records["before_training_exp"] == [[], [(20, tasks[0])], [(20, t) for t in tasks]]
    _valid(_run(tmp_path / "b", "coresets", scenario=scenario, probe=delta, coreset_size=20))
    # Nothing replayed in the first experience; then the student starts as its teacher (the
    # term is 0 up to rounding) and drifts from it with the first update.
    assert max(delta.delta[0]) == 0 and abs(delta.delta[1][0]) < 1e-5
    assert min(delta.delta[1][1:]) > 0 and min(delta.delta[2][1:]) > 0


def test_coresets_split_the_replayed_batch_and_weigh_the_distillation_by_t_squared():
    from clstm.plugins.coresets import distillation_term, shares

    assert shares(10, 3, torch.tensor([2, 0, 1])) == [3, 3, 4]
    assert shares(10, 3, torch.tensor([0, 2, 1])) == [4, 3, 3]
    assert shares(2, 3, torch.tensor([1, 2, 0])) == [0, 1, 1]
    # a class per sequence: KL over the teacher's 2 classes (the student has grown a third)
    out, soft = torch.tensor([[0.0, 2.0, 5.0]]), torch.tensor([[2.0, 0.0]])
    p, q = torch.softmax(soft / 2, dim=1), torch.softmax(out[:, :2] / 2, dim=1)
    kl = (p * (p / q).log()).sum()
    term = distillation_term(out, soft, torch.tensor([1]), temperature=2.0)
    assert term.item() == pytest.approx(4 * kl.item())
    # bits per step: binary cross-entropy of the soft bits at the target steps only
    out, soft = torch.tensor([[[2.0], [0.0], [9.0]]]), torch.tensor([[[0.0], [4.0], [0.0]]])
    y = torch.tensor([[[-1.0], [1.0], [-1.0]]])  # only step 1 carries a target
    s, t = torch.sigmoid(torch.tensor(0.0 / 2)), torch.sigmoid(torch.tensor(4.0 / 2))
    bce = -(t * s.log() + (1 - t) * (1 - s).log())
    assert distillation_term(out, soft, y, 2.0).item() == pytest.approx(4 * bce.item())
    forecast = torch.tensor([[1.0, 3.0]])  # regression: the mean squared difference, no T
    assert distillation_term(forecast, torch.zeros(1, 2), forecast, 2.0).item() == 5.0


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_separate_models_never_forget_and_never_transfer(tmp_path, scenario):
    result = _run_scenario(tmp_path, "separate", scenario)
    R = _valid(result)
    for j in range(3):
        assert np.all(R[j:, j] == R[j, j])  # experience j is always evaluated with its own model
    assert result.metrics["bwt"] == 0 and result.metrics["forgetting"] == 0


def _run_scenario_config(strategy, params=None):
    return {
        "device": "cpu", "benchmark": {"name": "seq_digits", "n_experiences": 3, "test_size": 0.5},
        "strategy": {"name": strategy, **(params or {})}, "model": {"hidden_size": 16},
        "train": {"epochs": 2},
    }  # fmt: skip


def _run_scenario(tmp_path, strategy, scenario):
    if scenario != "class":
        return _run(tmp_path, strategy, scenario=scenario)
    result = run_experiment(_run_scenario_config(strategy), out=tmp_path)
    assert result.status == "completed", result.error
    return result


@pytest.mark.parametrize(("strategy", "scenario"), [("der", "task")])
def test_unsupported_combinations_are_refused(tmp_path, strategy, scenario):
    cfg = {
        "benchmark": {"name": "seq_digits", "scenario": scenario},
        "strategy": {"name": strategy},
    }
    with pytest.raises(ConfigError, match=f"strategy '{strategy}' does not support the {scenario}"):
        run_experiment(cfg, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def _mixed_stream(store):
    """Two datasets of different length and feature count, built with each dataset stored at
    its own shape (``own``, the default) or every sample stored padded (``stream``)."""
    from clstm.data import sequences
    from clstm.data.arrays import benchmark_from_arrays

    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 12, 3))
    b = [rng.standard_normal((int(t), 1)) for t in rng.integers(5, 30, 60)]
    ya, yb = np.arange(60) % 2, np.arange(60) % 3
    a[np.arange(60), :, 0] += 2 * ya[:, None]  # learnable: the class shifts a channel
    for seq, label in zip(b, yb, strict=True):
        seq += label
    make = sequences.make_scenario
    try:
        sequences.make_scenario = lambda *args, **kw: make(*args, **kw, store=store)
        return benchmark_from_arrays(
            [(a[:40], ya[:40]), (b[:40], yb[:40])],
            [(a[40:], ya[40:]), (b[40:], yb[40:])],
            scenario="class",
            names=["wide", "long"],
        )
    finally:
        sequences.make_scenario = make


@pytest.mark.parametrize(
    "strategy", sorted(n for n, e in STRATEGIES.items() if "class" in e.scenarios)
)
def test_mixed_shapes_stored_unpadded_give_the_same_run(tmp_path, strategy):
    """A stream whose datasets differ in length and feature count keeps each at its own shape
    (padding happens per batch, in every loader a strategy builds: replay, joint, cumulative,
    GEM/A-GEM memories, DER's buffer, importance passes), and every strategy's accuracy matrix
    is bitwise the one of storing every sample padded."""
    runs = {}
    for store in ("own", "stream"):
        bench = _mixed_stream(store)
        cfg = {
            "name": f"mixed_{store}", "device": "cpu", "strategy": {"name": strategy},
            "model": {"hidden_size": 8}, "train": {"epochs": 2, "batch_size": 8, "lr": 0.01},
        }  # fmt: skip
        result = run_experiment(cfg, benchmark=bench, out=tmp_path / store)
        assert result.status == "completed", result.error
        runs[store] = (bench, result)
    (own, r_own), (full, r_full) = runs["own"], runs["stream"]
    assert own.fingerprint == full.fingerprint
    np.testing.assert_array_equal(r_own.accuracy_matrix, r_full.accuracy_matrix)
    streams = (own.scenario.train_stream, full.scenario.train_stream)
    for exp_own, exp_full in zip(*streams, strict=True):
        assert exp_own.dataset[0][0].shape == exp_full.dataset[0][0].shape == (29, 4)  # as read
    wide, long = (stacked(e.dataset).tensors[0] for e in own.scenario.train_stream)
    assert wide.shape == (40, 12, 4) and long.shape[1:] == (29, 2)  # as stored
    assert stacked(full.scenario.train_stream[0].dataset).tensors[0].shape == (40, 29, 4)
