"""Online streams (online.batch): the schedule and its delay (no leak of future values), the
prequential scores (exact, each sequence once), online replay's reservoir, the boundary rules,
resume, the files, TensorBoard, the report, the refusals and the cost benchmark."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin

from clstm import run_experiment
from clstm.errors import ConfigError
from clstm.plugins import online
from clstm.plugins.online import OnlineReplayPlugin, schedule

ONLINE = ["online.batch=8", "train.epochs=1"]
FORECAST = {
    "name": "f", "device": "cpu",
    "benchmark": {"name": "forecast_regimes", "n_experiences": 2, "n_series": 4, "length": 120},
    "model": {"type": "lstm", "hidden_size": 8}, "strategy": {"name": "naive"},
    "train": {"epochs": 1, "batch_size": 16},
}  # fmt: skip


def test_without_times_every_batch_is_trained_as_it_arrives():
    order = np.random.default_rng(0).permutation(23)
    steps = schedule(order, 5)
    assert [len(rows) for rows, _ in steps] == [5, 5, 5, 5, 3]
    assert all(len(trains) == 1 and trains[0] is rows for rows, trains in steps)
    np.testing.assert_array_equal(np.concatenate([r for r, _ in steps]), order)


def _leaks(steps, arrival, observed) -> int:
    """Training batches holding a target observed after the latest arrival so far (a last step
    with nothing incoming comes after the series' end: every value has been observed)."""
    now, leaks = -np.inf, 0
    for incoming, trains in steps:
        now = max(now, arrival[incoming].max()) if len(incoming) else np.inf
        leaks += sum(int((observed[rows] > now).any()) for rows in trains)
    return leaks


def test_forecast_windows_are_trained_only_once_their_horizon_is_observed():
    from clstm.data.forecast import window_times

    # 3 series side by side, windows every 2 steps, context 6, horizon 4 (delay: 2 windows)
    arrival, observed = window_times(np.tile(range(0, 40, 2), 3), 6, 4)
    order = np.argsort(arrival, kind="stable")
    delayed = schedule(order, 4, arrival, observed)
    assert _leaks(delayed, arrival, observed) == 0
    trained = np.concatenate([rows for _, trains in delayed for rows in trains])
    assert sorted(trained) == list(range(len(arrival)))  # every window, once
    assert max(len(rows) for _, trains in delayed for rows in trains) <= 4
    # each incoming batch is evaluated before its windows are trained: never in the same step
    for incoming, trains in delayed:
        assert not set(incoming) & {int(i) for rows in trains for i in rows}
    # the no-delay setting trains every window as it arrives: on values still in the future
    # when the next windows, whose targets overlap them, are predicted
    undelayed = schedule(order, 4, arrival, observed, delay=False)
    assert _leaks(undelayed, arrival, observed) == len(undelayed) > 0


class Steps(SupervisedPlugin):
    """Records each experience's online schedule and the optimizer state at its start."""

    def __init__(self):
        super().__init__()
        self.steps, self.state_at_start = [], []

    def before_training_epoch(self, strategy, **kwargs):
        self.steps.append(strategy.dataloader.steps)
        self.state_at_start.append(len(strategy.optimizer.state))


def test_an_online_forecast_never_trains_on_unobserved_targets(tmp_path):
    probe = Steps()
    result = run_experiment(FORECAST, out=tmp_path, overrides=["online.batch=4"],
                            plugins=[probe])  # fmt: skip
    from clstm.config import load_config
    from clstm.run.runner import build_benchmark

    bench = build_benchmark(load_config(FORECAST))
    for steps, (arrival, observed) in zip(probe.steps, bench.arrival_times, strict=True):
        assert _leaks(steps, arrival, observed) == 0
        assert sum(len(rows) for rows, _ in steps) == len(arrival)  # each window scored once
    p = result.metrics["prequential"]
    assert set(p) >= {"mse", "mae", "curve"} and result.metrics["preq_mse"] > 0
    horizon = 4  # the counts are target values: windows x horizon
    assert sum(p["curve"]["count"]) == horizon * sum(len(a) for a, _ in bench.arrival_times)


def test_each_sequence_is_scored_once_before_it_is_trained_on(tmp_path, tiny_config):
    result = run_experiment(tiny_config, out=tmp_path, overrides=ONLINE)
    curve = result.metrics["prequential"]["curve"]
    assert curve["count"] == [8] * 24  # 3 experiences x 64 sequences, batches of 8
    assert curve["seen"] == list(range(8, 3 * 64 + 1, 8))
    per = result.metrics["prequential"]["accuracy"]["per_experience"]
    for e in range(3):
        mine = [v for v, x in zip(curve["accuracy"], curve["experience"], strict=True) if x == e]
        assert per[e] == pytest.approx(np.mean(mine))
    assert result.metrics["preq_acc"] == pytest.approx(np.mean(curve["accuracy"]))
    rows = list(csv.DictReader((result.run_dir / "prequential.csv").open()))
    assert len(rows) == 24 and [r["experience"] for r in rows[::8]] == ["rule0", "rule1", "rule2"]
    assert float(rows[0]["value"]) == pytest.approx(curve["accuracy"][0], abs=1e-6)


@pytest.mark.parametrize("strategy", ["naive", "replay", "der"])
def test_scores_from_the_training_forward_equal_a_forward_of_their_own(
    tmp_path, tiny_config, strategy, monkeypatch
):
    """The free scores (the training forward's last rows) are the model's eval-mode predictions
    before the update: forcing a separate forward gives the same scores and the same run."""
    tiny_config["strategy"] = {"name": strategy}
    free = run_experiment(tiny_config, out=tmp_path / "free", overrides=ONLINE)
    monkeypatch.setattr(online, "stochastic", lambda model: True)
    own = run_experiment(tiny_config, out=tmp_path / "own", overrides=ONLINE)
    np.testing.assert_allclose(free.metrics["prequential"]["curve"]["accuracy"],
                               own.metrics["prequential"]["curve"]["accuracy"])  # fmt: skip
    np.testing.assert_array_equal(free.accuracy_matrix, own.accuracy_matrix)


def test_the_first_batch_is_scored_by_the_untrained_model(tmp_path, tiny_config):
    from clstm.config import load_config
    from clstm.models import build_model
    from clstm.run.protocol import seed_everything
    from clstm.run.runner import build_benchmark

    result = run_experiment(tiny_config, out=tmp_path, overrides=ONLINE)
    cfg = load_config(tiny_config, ONLINE)
    bench = build_benchmark(cfg)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, benchmark=bench).eval()
    dataset = bench.scenario.train_stream[0].dataset
    rows = online.arrival_order(len(dataset), cfg.seed, 0)[:8]
    x = torch.stack([dataset[int(i)][0] for i in rows])
    y = torch.tensor([int(dataset[int(i)][1]) for i in rows])
    with torch.no_grad():
        first = float((model(x).argmax(1) == y).float().mean())
    assert result.metrics["prequential"]["curve"]["accuracy"][0] == pytest.approx(first)


def test_online_replay_keeps_a_uniform_reservoir_of_exactly_mem_size():
    kept = np.zeros(100)
    for seed in range(300):
        plugin = OnlineReplayPlugin(mem_size=10, batch_size_mem=None, seed=seed)
        for start in range(0, 100, 5):
            ids = torch.arange(start, start + 5)
            x = torch.zeros(5, 3, 2)
            x[:, 0, 0] = ids.float()
            plugin._incoming = [x, ids, torch.zeros(5, dtype=torch.long)]
            plugin.after_training_iteration(None)
            assert plugin.filled == min(start + 5, 10)
        assert plugin.memory[1].shape[0] == 10 and len(set(plugin.memory[1].tolist())) == 10
        np.testing.assert_array_equal(plugin.memory[0][:, 0, 0].long(), plugin.memory[1])
        kept[plugin.memory[1].numpy()] += 1
    # every sequence kept with probability 10/100: 30 of 300 runs, binomial sd ~5.2
    assert abs(kept[:50].mean() - 30) < 3 and abs(kept[50:].mean() - 30) < 3
    assert kept.min() > 10 and kept.max() < 55


class Batches(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def after_forward(self, strategy, **kwargs):
        self.sizes.append(len(strategy.mb_output))


def test_online_replay_puts_a_memory_batch_before_each_incoming_one(tmp_path, tiny_config):
    tiny_config["strategy"] = {"name": "replay", "mem_size": 20}
    probe = Batches()
    run_experiment(tiny_config, out=tmp_path, overrides=ONLINE, plugins=[probe])
    assert probe.sizes[0] == 8 and probe.sizes[1] == 16 and set(probe.sizes[1:]) == {16}


@pytest.mark.parametrize(("boundaries", "reset"), [("known", True), ("hidden", False)])
def test_hidden_boundaries_never_reset_the_optimizer(tmp_path, tiny_config, boundaries, reset):
    probe = Steps()
    run_experiment(tiny_config, out=tmp_path, plugins=[probe],
                   overrides=[*ONLINE, f"online.boundaries={boundaries}"])  # fmt: skip
    assert (probe.state_at_start[1:] == [0, 0]) is reset
    assert probe.state_at_start[0] == 0


FIRED: list = []


class StopOnce(SupervisedPlugin):
    def after_training_iteration(self, strategy, **kwargs):
        if not FIRED and strategy.clock.train_exp_counter == 1:
            FIRED.append(True)
            raise KeyboardInterrupt


def test_resumed_online_runs_continue_exactly(tmp_path, tiny_config):
    FIRED.clear()
    tiny_config["strategy"] = {"name": "replay"}
    full = run_experiment(tiny_config, out=tmp_path / "full", overrides=ONLINE)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_config, out=tmp_path / "cut", overrides=ONLINE, plugins=[StopOnce()])
    resumed = run_experiment(tiny_config, out=tmp_path / "cut", overrides=ONLINE, resume=True)
    assert resumed.metrics["prequential"] == full.metrics["prequential"]
    np.testing.assert_array_equal(resumed.accuracy_matrix, full.accuracy_matrix)


@pytest.mark.parametrize("strategy", ["agem", "lwf", "ewc"])
def test_the_boundary_strategies_run_with_known_boundaries(tmp_path, tiny_config, strategy):
    tiny_config["strategy"] = {"name": strategy}
    result = run_experiment(tiny_config, out=tmp_path, overrides=ONLINE)
    assert result.status == "completed" and result.metrics["preq_acc"] is not None


def test_tensorboard_report_and_continual_evaluation(tmp_path, tiny_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from clstm.report import write_report

    for seed in (0, 1):
        run_experiment(tiny_config, out=tmp_path / "runs", seed=seed,
                       overrides=[*ONLINE, "eval.every=4"])  # fmt: skip
    result = run_experiment(tiny_config, out=tmp_path / "runs", seed=0, resume=True,
                            overrides=[*ONLINE, "eval.every=4"])  # fmt: skip
    (events,) = result.run_dir.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"online/preq_acc", "online/preq_acc_overall", "continual/acc/exp00"} <= tags
    assert [e.step for e in acc.Scalars("online/preq_acc")] == result.metrics["prequential"][
        "curve"]["seen"]  # fmt: skip
    text = write_report([tmp_path / "runs"], tmp_path / "report").markdown_path.read_text()
    assert "preq. ACC" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategy": {"name": "si"}}, "strategy 'si' is not run online"),
        ({"online": {"batch": 8, "boundaries": "hidden"}, "strategy": {"name": "ewc"}},
         "hidden does not tell strategy 'ewc'"),
        ({"online": {"batch": 8, "boundaries": "hidden"},
          "benchmark": {"scenario": "task"}}, "cannot hide the boundaries of the task scenario"),
        ({"strategy": {"name": "replay", "policy": "class_balanced"}},
         "class_balanced is not an online policy"),
        ({"train": {"epochs": 2}}, "an online stream is seen once"),
    ],
)  # fmt: skip
def test_refusals(tmp_path, tiny_config, change, message):
    config = {**tiny_config, "online": {"batch": 8}, "train": {"epochs": 1}}
    for key, value in change.items():
        config[key] = {**config.get(key, {}), **value}
    with pytest.raises(ConfigError, match=message):
        run_experiment(config, out=tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_cost_benchmark_runs_in_quick_mode(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parent.parent / "experiments" / "bench_online.py"
    out = subprocess.run([sys.executable, str(script), "--quick", "--repeats", "1"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| naive |" in out.stdout and "online / offline" in out.stdout
