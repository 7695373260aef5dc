"""End-to-end runs: run directory contents, TensorBoard, no-overwrite, divergence and failures."""

import json

import numpy as np
import pytest
import yaml
from avalanche.training.plugins import SupervisedPlugin
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from clstm import metrics as clm
from clstm.config import ConfigError, load_config
from clstm.run.files import write_json_atomic
from clstm.run.runner import RunExistsError, RunFailed, run_experiment

METRIC_KEYS = {
    "experiment", "strategy", "seed", "status", "error", "experience_names", "experiences_trained",
    "accuracy_matrix", "initial_accuracy", "acc", "bwt", "fwt", "forgetting",
    "forgetting_learned", "learning_accuracy", "per_experience", "wall_time_s",
}  # fmt: skip


@pytest.fixture(scope="module")
def completed(tmp_path_factory, make_tiny_config):
    """One tiny completed run shared by the read-only checks below."""
    out = tmp_path_factory.mktemp("results")
    return run_experiment(make_tiny_config(), out=out), out


def test_run_directory_layout(completed):
    result, out = completed
    assert result.run_dir == out / "tiny" / "naive" / "seed0"
    names = {p.name for p in result.run_dir.iterdir()}
    assert {"config.yaml", "meta.json", "metrics.json", "accuracy_matrix.csv"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert list(result.run_dir.glob("events.out.tfevents.*"))


def test_metrics_json_schema_and_values(completed):
    result, _ = completed
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert METRIC_KEYS <= set(m)
    assert (m["experiment"], m["strategy"], m["seed"], m["status"]) == (
        "tiny",
        "naive",
        0,
        "completed",
    )
    assert m["experience_names"] == ["rule0", "rule1", "rule2"]
    R = np.array(m["accuracy_matrix"])
    assert R.shape == (3, 3) and np.all((R >= 0) & (R <= 1))
    assert len(m["initial_accuracy"]) == 3
    expected = clm.summarize(R, m["initial_accuracy"])
    for key in ("acc", "bwt", "fwt", "forgetting", "forgetting_learned", "learning_accuracy"):
        assert m[key] == pytest.approx(expected[key])
    np.testing.assert_allclose(result.accuracy_matrix, R)


def test_accuracy_matrix_csv(completed):
    result, _ = completed
    lines = (result.run_dir / "accuracy_matrix.csv").read_text().splitlines()
    assert lines[0] == "trained_on,rule0,rule1,rule2"
    assert lines[1].startswith("(initial),")
    row = [float(v) for v in lines[2].split(",")[1:]]
    np.testing.assert_allclose(row, result.accuracy_matrix[0], atol=1e-6)


def test_config_yaml_is_fully_resolved_and_reloads(completed):
    result, _ = completed
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["train"]["lr_schedule"] == "exponential"  # a default, written out
    assert load_config(result.run_dir / "config.yaml") == load_config(saved)


def test_meta_json_provenance(completed):
    result, _ = completed
    meta = json.loads((result.run_dir / "meta.json").read_text())
    assert meta["status"] == "completed"
    assert meta["packages"]["torch"] and meta["packages"]["avalanche-lib"]
    assert meta["started"] <= meta["ended"]
    assert [t["experience"] for t in meta["timings"]] == ["rule0", "rule1", "rule2"]
    assert all(t["train_s"] > 0 and t["eval_s"] > 0 for t in meta["timings"])
    assert meta["initial_eval_s"] > 0  # the accuracy matrix's first row
    assert "git" in meta and "command" in meta and len(meta["config_hash"]) == 16
    assert meta["cpu"] and meta["device"] == "cpu" and "gpu" not in meta  # the CPU's model name


def test_tensorboard_holds_accuracy_and_forgetting_per_experience(completed):
    result, _ = completed
    events = EventAccumulator(str(result.run_dir))
    events.Reload()
    R, b = result.accuracy_matrix, result.initial_accuracy

    def scalars(tag):
        return {e.step: e.value for e in events.Scalars(tag)}

    for j in range(3):
        acc = scalars(f"accuracy/exp{j:02d}")
        assert sorted(acc) == [0, 1, 2, 3]  # step = experiences trained
        assert acc[0] == pytest.approx(b[j])
        assert [acc[k] for k in (1, 2, 3)] == pytest.approx(R[:, j].tolist())
    for j in range(2):
        forgetting = scalars(f"forgetting/exp{j:02d}")
        for k in forgetting:
            assert forgetting[k] == pytest.approx(clm.forgetting_per_experience(R[:k, :k])[j])
        assert 3 in forgetting
    final = result.metrics
    for tag, key in [("cl/ACC", "acc"), ("cl/BWT", "bwt"), ("cl/forgetting", "forgetting")]:
        assert scalars(tag)[3] == pytest.approx(final[key])


def test_same_config_and_seed_give_the_same_numbers(completed, tmp_path, tiny_config):
    first, _ = completed
    second = run_experiment(tiny_config, out=tmp_path)
    np.testing.assert_array_equal(second.accuracy_matrix, first.accuracy_matrix)
    np.testing.assert_array_equal(second.initial_accuracy, first.initial_accuracy)


def test_existing_run_is_not_overwritten(tmp_path, tiny_config):
    tiny_config["benchmark"]["n_experiences"] = 2
    first = run_experiment(tiny_config, out=tmp_path)
    before = (first.run_dir / "metrics.json").read_bytes()
    with pytest.raises(
        RunExistsError, match=r"already holds a run \(status: completed\).*overwrite=True"
    ):
        run_experiment(tiny_config, out=tmp_path)
    assert (first.run_dir / "metrics.json").read_bytes() == before
    second = run_experiment(
        tiny_config, out=tmp_path, overwrite=True, overrides=["train.lr=0.05"], run_name="naive"
    )
    assert second.run_dir == first.run_dir
    assert yaml.safe_load((second.run_dir / "config.yaml").read_text())["train"]["lr"] == 0.05
    assert len(list(second.run_dir.glob("events.*"))) == 1  # old events removed


def test_bad_config_writes_nothing(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match="train.epochs"):
        run_experiment(tiny_config, out=tmp_path, overrides=["train.epochs=0"])
    with pytest.raises(ConfigError, match="CUDA is not available"):
        run_experiment(tiny_config, out=tmp_path, overrides=["device=cuda"])
    assert list(tmp_path.iterdir()) == []


class PoisonLoss(SupervisedPlugin):
    """Makes the model's output NaN from the given training experience on."""

    def __init__(self, from_experience):
        super().__init__()
        self.from_experience = from_experience

    def after_forward(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter >= self.from_experience:
            strategy.mb_output = strategy.mb_output * float("nan")


def test_nan_loss_stops_the_run_as_diverged(tmp_path, tiny_config):
    result = run_experiment(tiny_config, out=tmp_path, plugins=[PoisonLoss(1)])
    assert result.status == "diverged"
    assert "loss became nan in experience 2, epoch 1, iteration 1" in result.error
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["status"] == "diverged" and m["experiences_trained"] == 1
    assert m["accuracy_matrix"][0][0] is not None  # what was measured is kept
    assert m["accuracy_matrix"][1] == [None, None, None]
    assert m["acc"] is None and m["forgetting"] is None  # no summary of an unfinished run
    assert json.loads((result.run_dir / "meta.json").read_text())["status"] == "diverged"


class PoisonTerm(SupervisedPlugin):
    """Adds a NaN term to the loss before the backward pass (as a method's penalty would)."""

    def before_backward(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter >= 1:
            strategy.loss = strategy.loss + float("nan")


def test_a_nan_term_added_before_backward_is_caught_before_the_update(tmp_path, tiny_config):
    """The guard checks the loss that is back-propagated, with every plugin's terms, whatever
    the plugins' order; the weights never take the update."""
    weights = []

    class Keep(SupervisedPlugin):
        def after_training_exp(self, strategy, **kwargs):
            weights.append([p.detach().clone() for p in strategy.model.parameters()])

    result = run_experiment(tiny_config, out=tmp_path, plugins=[Keep(), PoisonTerm()])
    assert result.status == "diverged"
    assert "loss became nan in experience 2, epoch 1, iteration 1" in result.error


class Boom(SupervisedPlugin):
    def before_training_exp(self, strategy, **kwargs):
        raise RuntimeError("boom")


def test_unexpected_error_is_recorded_then_raised(tmp_path, tiny_config):
    with pytest.raises(RunFailed, match="RuntimeError: boom"):
        run_experiment(tiny_config, out=tmp_path, plugins=[Boom()])
    run_dir = tmp_path / "tiny" / "naive" / "seed0"
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"
    assert "boom" in (run_dir / "traceback.txt").read_text()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"acc": 0.5})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"acc": object()})
    assert json.loads(path.read_text()) == {"acc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    write_json_atomic(path, {"x": float("nan")})
    assert json.loads(path.read_text()) == {"x": None}
