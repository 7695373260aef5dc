"""Each scenario and built-in benchmark end to end, heterogeneous streams, and Avalanche fixes."""

import json

import numpy as np
import pytest
import torch
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from clstm.config import ConfigError, load_config
from clstm.data.arrays import benchmark_from_arrays
from clstm.data.sampling import LengthBucketBatchSampler
from clstm.models import build_model
from clstm.models.multitask import PAD_LOGIT, MultiTaskSequenceClassifier, TaskHeads
from clstm.plugins import LengthBucketingPlugin
from clstm.plugins.replay import QuietReplayPlugin
from clstm.run.runner import run_experiment

FAST = ["train.epochs=1", "model.hidden_size=8", "train.batch_size=64", "eval.batch_size=256"]


def _check_completed(result, n_experiences):
    R = result.accuracy_matrix
    assert result.status == "completed", result.error
    assert R.shape == (n_experiences, n_experiences)
    assert np.all((R >= 0) & (R <= 1))
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["acc"] == pytest.approx(R[-1].mean())
    return m


def test_task_scenario_end_to_end(tmp_path, tiny_config):
    tiny_config["benchmark"]["scenario"] = "task"
    result = run_experiment(tiny_config, out=tmp_path)
    m = _check_completed(result, 3)
    assert m["scenario"] == "task"


def test_class_scenario_end_to_end_on_split_digits(tmp_path):
    cfg = {"name": "split", "device": "cpu", "benchmark": {"name": "seq_digits", "test_size": 0.5}}
    enough = ["train.epochs=4", "model.hidden_size=32", "train.batch_size=16", "train.lr=0.01"]
    result = run_experiment(cfg, out=tmp_path, overrides=enough)
    m = _check_completed(result, 5)
    assert m["scenario"] == "class"
    assert m["experience_names"][0] == "classes 0,1"
    R = result.accuracy_matrix
    assert np.all(np.diag(R) > 0.5)  # each pair of digits is learnt ...
    assert R[-1, 0] < 0.2  # ... and class-incremental fine-tuning forgets it


def test_domain_scenario_end_to_end_on_permuted_digits(tmp_path):
    cfg = {"name": "perm", "device": "cpu"}
    overrides = [
        "benchmark.name=seq_digits",
        "benchmark.variant=permuted",
        "benchmark.n_experiences=2",
    ]
    result = run_experiment(cfg, out=tmp_path, overrides=FAST + overrides)
    assert _check_completed(result, 2)["scenario"] == "domain"


def test_split_digits_as_task_incremental(tmp_path):
    cfg = {"name": "split_task", "device": "cpu"}
    overrides = [
        "benchmark.name=seq_digits",
        "benchmark.scenario=task",
        "benchmark.n_experiences=3",
    ]
    result = run_experiment(cfg, out=tmp_path, overrides=FAST + overrides)
    m = _check_completed(result, 3)
    assert m["experience_names"] == ["digits 0,1,2,3", "digits 4,5,6", "digits 7,8,9"]


def test_ucr_stream_from_aeon_end_to_end(tmp_path):
    cfg = {
        "name": "ucr",
        "device": "cpu",
        "benchmark": {"name": "ucr_stream", "datasets": ["ItalyPowerDemand", "JapaneseVowels"]},
    }
    result = run_experiment(cfg, out=tmp_path, overrides=FAST)
    _check_completed(result, 2)
    meta = json.loads((result.run_dir / "meta.json").read_text())["benchmark"]
    assert meta["scenario"] == "task"
    assert [e["n_features"] for e in meta["experiences"]] == [1, 12]
    assert meta["label_maps"][1] == {str(k): k - 1 for k in range(1, 10)}


def test_scenario_auto_resolves_to_the_benchmark_default():
    assert load_config({"benchmark": {"name": "seq_digits"}}).benchmark.scenario == "class"
    permuted = {"benchmark": {"name": "seq_digits", "variant": "permuted"}}
    assert load_config(permuted).benchmark.scenario == "domain"
    assert load_config({"benchmark": {"name": "ucr_stream"}}).benchmark.scenario == "task"
    with pytest.raises(ConfigError, match="'class' is not supported by benchmark 'synthetic'"):
        load_config({}, ["benchmark.scenario=class"])
    with pytest.raises(ConfigError, match="a dataset is listed twice"):
        load_config({"benchmark": {"name": "ucr_stream", "datasets": ["GunPoint", "gunpoint"]}})


def _heterogeneous():
    rng = np.random.default_rng(0)

    def dataset(n, f, lo, hi, classes):
        X = [rng.standard_normal((rng.integers(lo, hi), f)) for _ in range(n)]
        y = np.array([classes[i % len(classes)] for i in range(n)])
        return X, y

    train = [dataset(40, 2, 3, 8, ("up", "down")), dataset(45, 6, 20, 60, (0, 1, 2))]
    test = [dataset(20, 2, 3, 8, ("up", "down")), dataset(21, 6, 20, 60, (0, 1, 2))]
    return train, test


@pytest.mark.parametrize(
    ("scenario", "adapter"), [("domain", "pad"), ("task", "pad"), ("task", "projection")]
)
def test_heterogeneous_stream_runs_with_each_adapter(tmp_path, tiny_config, scenario, adapter):
    train, test = _heterogeneous()
    bench = benchmark_from_arrays(train, test, scenario=scenario, names=["short", "long"])
    tiny_config["model"].update(adapter=adapter, adapter_size=4)
    result = run_experiment(tiny_config, benchmark=bench, out=tmp_path)
    _check_completed(result, 2)
    assert result.experience_names == ["short", "long"]


def test_projection_adapters_have_each_datasets_width():
    train, test = _heterogeneous()
    bench = benchmark_from_arrays(train, test, scenario="task")
    cfg = load_config({}, ["model.adapter=projection", "model.adapter_size=5"])
    model = build_model(cfg.model, benchmark=bench)
    assert [a.linear.in_features for a in model.adapters] == [2, 6]
    assert model.encoder.rnn.input_size == 5


def test_projection_adapter_needs_task_labels(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match="projection needs task labels"):
        run_experiment(tiny_config, out=tmp_path, overrides=["model.adapter=projection"])
    assert list(tmp_path.iterdir()) == []


def test_validation_stream_gets_its_own_accuracy_matrix(tmp_path, tiny_config):
    tiny_config["benchmark"]["validation"] = 0.25
    result = run_experiment(tiny_config, out=tmp_path)
    valid = result.metrics["validation"]
    V = np.array(valid["accuracy_matrix"])
    assert V.shape == (3, 3) and valid["acc"] == pytest.approx(V[-1].mean())
    assert not np.allclose(V, result.accuracy_matrix)
    events = EventAccumulator(str(result.run_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("valid/accuracy/exp00")] == [0, 1, 2, 3]


def test_run_accepts_an_avalanche_benchmark_in_clstm_format(tmp_path, tiny_config):
    train, test = _heterogeneous()
    scenario = benchmark_from_arrays(train, test).scenario  # a plain Avalanche CLScenario
    result = run_experiment(tiny_config, benchmark=scenario, out=tmp_path)
    _check_completed(result, 2)
    with pytest.raises(ConfigError, match="mask channel last"):
        run_experiment(tiny_config, benchmark=_unmasked(), out=tmp_path, overwrite=True)


def _unmasked():
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils.utils import as_classification_dataset

    class Raw(torch.utils.data.Dataset):
        targets = [0, 1, 0, 1]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.randn(5, 3), self.targets[i]

    ds = as_classification_dataset(Raw())
    return benchmark_from_datasets(train=[ds], test=[ds])


# -- Avalanche fixes -----------------------------------------------------------------------------


def _two_task_model():
    train, test = _heterogeneous()
    bench = benchmark_from_arrays(train, test, scenario="task")
    model = build_model(load_config({}, ["model.hidden_size=4"]).model, benchmark=bench)
    for experience in bench.scenario.train_stream:  # what strategies do before training
        model.train()
        from avalanche.models.dynamic_modules import avalanche_model_adaptation

        avalanche_model_adaptation(model, experience)
    return model, bench


def test_task_heads_accept_class_sets_where_avalanche_raises():
    _, bench = _two_task_model()
    experience = bench.scenario.train_stream[0]
    assert isinstance(experience.classes_in_this_experience, set)
    with pytest.raises(IndexError, match="got set"):
        MultiHeadClassifier(4).adaptation(experience)
    heads = TaskHeads(4)
    heads.adaptation(experience)
    assert heads.classifiers["0"].classifier.out_features == 2


def test_narrow_task_heads_are_padded_with_a_very_negative_logit():
    model, bench = _two_task_model()
    assert isinstance(model, MultiTaskSequenceClassifier)
    with torch.no_grad():
        model.heads.classifiers["0"].classifier.bias.fill_(-50.0)  # task 0: all logits negative
    x = next(
        iter(torch.utils.data.DataLoader(bench.scenario.test_stream[0].dataset, batch_size=8))
    )[0]
    tasks = torch.zeros(len(x), dtype=torch.long)
    model.eval()
    with torch.no_grad():
        fixed = model(x, tasks)
        unfixed = MultiTaskModule.forward(model, x, tasks)  # Avalanche's zero padding
    assert fixed.shape == (8, 3) and torch.all(fixed[:, 2] == PAD_LOGIT)
    assert torch.all(fixed.argmax(1) < 2)  # predictions stay among task 0's two classes
    assert torch.all(unfixed.argmax(1) == 2)  # Avalanche would predict a class task 0 lacks


# -- length bucketing inside strategies ----------------------------------------------------------


def _strategy(cls, bench, **kwargs):
    model = build_model(load_config({}, ["model.hidden_size=4"]).model, benchmark=bench)
    return cls(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
        criterion=torch.nn.CrossEntropyLoss(), train_mb_size=8, train_epochs=1, device="cpu",
        plugins=[LengthBucketingPlugin()], evaluator=EvaluationPlugin(loggers=[_Silent()]),
        **kwargs,
    )  # fmt: skip


class _Silent:
    def __getattr__(self, name):
        return lambda *a, **k: None


@pytest.mark.parametrize("scenario", ["domain", "task"])
def test_bucketing_replaces_plain_training_loaders(scenario):
    train, test = _heterogeneous()
    bench = benchmark_from_arrays(train, test, scenario=scenario)
    seen = []
    strategy = _strategy(Naive, bench)
    strategy.plugins.append(_Spy(seen))
    strategy.train(bench.scenario.train_stream[1])
    loader = seen[0]
    # stacked samples (SampledBatches) or per-sample reads (a DataLoader): the bucketed batches
    assert isinstance(loader.batch_sampler, LengthBucketBatchSampler)


def test_bucketing_leaves_replay_loaders_alone():
    train, test = _heterogeneous()
    bench = benchmark_from_arrays(train, test)
    seen = []
    strategy = _strategy(Naive, bench)
    strategy.plugins += [QuietReplayPlugin(mem_size=20), _Spy(seen)]
    for experience in bench.scenario.train_stream:
        strategy.train(experience)
    assert type(seen[-1]).__name__ == "ReplayDataLoader"


class _Spy(LengthBucketingPlugin):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def before_training_epoch(self, strategy, **kwargs):
        self.seen.append(strategy.dataloader)


def test_missing_aeon_is_a_one_line_install_hint(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "aeon.datasets", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"needs the aeon package: pip install 'clstm\[ucr\]'"):
        run_experiment({"benchmark": {"name": "ucr_stream"}}, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_npz_files_named_in_a_config(tmp_path, tiny_config):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 12, 3))
    np.savez(
        tmp_path / "walk.npz", X_train=X, y_train=np.arange(30) % 2, X_test=X[:10],
        y_test=np.arange(10) % 2, lengths_train=rng.integers(1, 13, 30),
        lengths_test=np.full(10, 12),
    )  # fmt: skip
    np.savez(
        tmp_path / "talk.npz", X_train=X[..., :1], y_train=np.array(["a", "b", "c"] * 10),
        X_test=X[:6, :, :1], y_test=np.array(["a", "b", "c"] * 2),
    )  # fmt: skip
    files = [str(tmp_path / "walk.npz"), str(tmp_path / "talk.npz")]
    tiny_config["benchmark"] = {"name": "npz", "files": files, "scenario": "task"}
    result = run_experiment(tiny_config, out=tmp_path / "out")
    _check_completed(result, 2)
    assert result.experience_names == ["walk", "talk"]
    meta = json.loads((result.run_dir / "meta.json").read_text())["benchmark"]
    assert [e["n_train"] for e in meta["experiences"]] == [30, 30]
    assert meta["label_maps"][1] == {"a": 0, "b": 1, "c": 2}


def test_npz_problems_are_one_line_errors(tmp_path):
    np.savez(tmp_path / "partial.npz", X_train=np.ones((2, 3, 1)), y_train=[0, 1])
    np.savez(tmp_path / "objects.npz", X_train=np.array([np.ones(2), np.ones(3)], dtype=object))
    cases = [
        ("missing.npz", "file not found"),
        ("partial.npz", "missing array(s) X_test, y_test"),
        ("objects.npz", "cannot read it without unpickling"),
    ]
    for name, message in cases:
        cfg = {"benchmark": {"name": "npz", "files": [str(tmp_path / name)]}}
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run_experiment(cfg, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
