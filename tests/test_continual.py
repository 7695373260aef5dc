"""Continual evaluation (eval.every): the curves, their summaries (formulas on hand-made curves),
the same matrices with it on or off, resume, TensorBoard, the report, refusals."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from avalanche.core import SupervisedPlugin

from clstm import run_experiment
from clstm.errors import ConfigError
from clstm.metrics import (
    continual_record,
    min_accuracy,
    stability_gaps,
    windowed_forgetting,
    worst_case_accuracy,
)


def curve(points):
    """A curve from ``(iteration, trained, tested, value)`` tuples."""
    keys = ("iteration", "trained", "tested", "value")
    return {k: [p[i] for p in points] for i, k in enumerate(keys)}


# Two experiences, evaluated every 10 iterations; experience 0 ends at 30, experience 1 at 60.
# Experience 0: 0.5, 0.8, 0.9 (boundary) | 0.4, 0.6, 0.85 during experience 1 (a gap of 0.5).
HAND = curve([
    (10, 0, 0, 0.5), (20, 0, 0, 0.8), (30, 0, 0, 0.9),
    (40, 1, 0, 0.4), (40, 1, 1, 0.3), (50, 1, 0, 0.6), (50, 1, 1, 0.7),
    (60, 1, 0, 0.85), (60, 1, 1, 0.9),
])  # fmt: skip
ENDS = [30, 60]


def test_the_formulas_on_a_hand_made_curve():
    assert min_accuracy(HAND, ENDS) == pytest.approx(0.4)  # experience 0's low after its end
    # WC-ACC = 1/T a(last, end) + (1 - 1/T) min-ACC = 0.9/2 + 0.4/2
    assert worst_case_accuracy(HAND, ENDS) == pytest.approx(0.65)
    # WF with a window of 10: the largest drop within 10 iterations from the boundary on (0.9->0.4)
    assert windowed_forgetting(HAND, ENDS, window=10) == pytest.approx(0.5)
    assert windowed_forgetting(HAND, ENDS, window=5) == pytest.approx(0.0)  # no pair that close
    (gap,) = stability_gaps(HAND, ENDS, tolerance=0.05)
    assert gap["experience"] == 0 and gap["during"] == 1
    assert gap["depth"] == pytest.approx(0.5)  # 0.9 at the boundary, 0.4 at its lowest
    assert gap["recovery"] == 30  # back within 0.05 of 0.9 (0.85) at iteration 60 = 30 after
    (strict,) = stability_gaps(HAND, ENDS, tolerance=0.01)
    assert strict["recovery"] is None  # never back within 0.01 during experience 1
    record = continual_record(HAND, ENDS, window=10, tolerance=0.05)
    assert record["gap_depth"] == pytest.approx(0.5) and record["gap_recovery"] == 30
    assert record["gaps_recovered"] == "1/1"


def test_error_analogues_use_the_highest_error():
    errors = curve([(10, 0, 0, 1.0), (20, 0, 0, 0.5), (30, 1, 0, 2.0), (30, 1, 1, 1.0),
                    (40, 1, 0, 0.6), (40, 1, 1, 0.4)])  # fmt: skip
    ends = [20, 40]
    assert min_accuracy(errors, ends, higher=False) == pytest.approx(2.0)  # max-MSE
    assert worst_case_accuracy(errors, ends, higher=False) == pytest.approx(0.4 / 2 + 2.0 / 2)
    record = continual_record(errors, ends, window=10, tolerance=0.2, higher=False)
    assert record["gap_height"] == pytest.approx(1.5)  # 2.0 after the boundary's 0.5
    assert record["wf_mse"] == pytest.approx(1.5) and record["max_mse"] == pytest.approx(2.0)
    assert record["gap_recovery"] == 20  # 0.6 <= 0.5 + 0.2 at iteration 40


def test_a_gap_that_never_falls_below_its_boundary_has_depth_0():
    flat = curve([(10, 0, 0, 0.5), (20, 1, 0, 0.6), (20, 1, 1, 0.6)])
    assert stability_gaps(flat, [10, 20], tolerance=0.0)[0]["depth"] == 0.0


@pytest.mark.parametrize("strategy", ["naive", "replay", "ewc", "der", "lwf", "joint"])
def test_the_same_matrices_with_and_without_continual_evaluation(tmp_path, tiny_config, strategy):
    tiny_config["strategy"] = {"name": strategy}
    tiny_config["benchmark"]["validation"] = 0.25
    off = run_experiment(tiny_config, out=tmp_path / "off")
    on = run_experiment(tiny_config, out=tmp_path / "on", overrides=["eval.every=3"])
    np.testing.assert_array_equal(on.accuracy_matrix, off.accuracy_matrix)
    np.testing.assert_array_equal(on.metrics["validation"]["accuracy_matrix"],
                                  off.metrics["validation"]["accuracy_matrix"])  # fmt: skip
    curves = on.metrics["curves"]
    assert set(curves["streams"]) == {"test", "valid"}
    test = curves["streams"]["test"]["accuracy"]
    assert test["iteration"] == sorted(test["iteration"])
    if strategy == "joint":  # one training call on every experience: all are "seen"
        assert set(test["tested"]) == {0, 1, 2} and len(curves["boundaries"]) == 1
        return
    # every experience seen so far plus the current one, never a later one
    assert all(tested <= trained for trained, tested in zip(test["trained"], test["tested"],
                                                            strict=True))  # fmt: skip
    assert len(curves["boundaries"]) == 3
    # the boundary points are the matrix's rows, on a subsample that is the whole (small) set
    for k, end in enumerate(curves["boundaries"]):
        at = [v for it, te, v in zip(test["iteration"], test["tested"], test["value"],
                                     strict=True) if it == end]  # fmt: skip
        np.testing.assert_allclose(at, on.accuracy_matrix[k, : k + 1])
    assert on.metrics["min_acc"] is not None and on.metrics["validation"]["min_acc"] is not None
    rows = list(csv.DictReader((on.run_dir / "curves.csv").open()))
    assert {r["stream"] for r in rows} == {"test", "valid"} and rows[0]["experience_tested"]


def test_targets_other_than_a_class(tmp_path):
    copy = {"name": "c", "device": "cpu", "benchmark": {"name": "copy", "variant": "permuted",
            "n_experiences": 2, "n_train": 64, "n_test": 32, "pattern_len": 4},
            "model": {"type": "rnn", "hidden_size": 16}, "strategy": {"name": "naive"},
            "train": {"epochs": 1, "batch_size": 16}}  # fmt: skip
    bits = run_experiment(copy, out=tmp_path, overrides=["eval.every=2"])
    assert bits.metrics["curves"]["streams"]["test"]["accuracy"]["value"]
    forecast = {"name": "f", "device": "cpu",
                "benchmark": {"name": "forecast_regimes", "n_experiences": 2},
                "model": {"type": "lstm", "hidden_size": 8}, "strategy": {"name": "naive"},
                "train": {"epochs": 1, "batch_size": 64}}  # fmt: skip
    errors = run_experiment(forecast, out=tmp_path, overrides=["eval.every=5"])
    streams = errors.metrics["curves"]["streams"]["test"]
    assert set(streams) == {"mse", "mae"} and errors.metrics["max_mse"] is not None
    assert errors.metrics["gap_height"] is not None and "min_acc" not in errors.metrics


FIRED: list = []


class StopOnce(SupervisedPlugin):
    """Interrupts the second experience once, after a few of its iterations."""

    def after_training_iteration(self, strategy, **kwargs):
        if (
            not FIRED
            and strategy.clock.train_exp_counter == 1
            and strategy.clock.train_exp_iterations == 3
        ):
            FIRED.append(True)
            raise KeyboardInterrupt


def test_resumed_curves_continue_exactly(tmp_path, tiny_config):
    FIRED.clear()
    tiny_config["strategy"] = {"name": "replay"}
    full = run_experiment(tiny_config, out=tmp_path / "full", overrides=["eval.every=2"])
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_config, out=tmp_path / "cut", overrides=["eval.every=2"],
                       plugins=[StopOnce()])  # fmt: skip
    resumed = run_experiment(tiny_config, out=tmp_path / "cut", overrides=["eval.every=2"],
                             resume=True)  # fmt: skip
    assert resumed.metrics["curves"] == full.metrics["curves"]
    assert resumed.metrics["min_acc"] == full.metrics["min_acc"]


@pytest.mark.parametrize("strategy", ["naive", "der"])
def test_background_evaluation_records_the_same_curves(tmp_path, tiny_config, strategy):
    """eval.background: a copy of the model at each evaluation's iteration, evaluated in a second
    thread while training goes on, gives the same curves (bit for bit) and the same matrices."""
    tiny_config["strategy"] = {"name": strategy}
    tiny_config["benchmark"]["validation"] = 0.25
    serial = run_experiment(tiny_config, out=tmp_path / "serial", overrides=["eval.every=2"])
    background = run_experiment(tiny_config, out=tmp_path / "background",
                                overrides=["eval.every=2", "eval.background=true"])  # fmt: skip
    assert background.metrics["curves"] == serial.metrics["curves"]
    np.testing.assert_array_equal(background.accuracy_matrix, serial.accuracy_matrix)
    assert (background.run_dir / "curves.csv").read_text() == (
        serial.run_dir / "curves.csv"
    ).read_text()


def test_background_evaluation_resumes_exactly(tmp_path, tiny_config):
    """An interrupted run's checkpoint waits for the evaluation in flight: resumed, its curves
    equal an uninterrupted run's."""
    FIRED.clear()
    tiny_config["strategy"] = {"name": "replay"}
    on = ["eval.every=2", "eval.background=true"]
    full = run_experiment(tiny_config, out=tmp_path / "full", overrides=["eval.every=2"])
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_config, out=tmp_path / "cut", overrides=on, plugins=[StopOnce()])
    resumed = run_experiment(tiny_config, out=tmp_path / "cut", overrides=on, resume=True)
    assert resumed.metrics["curves"] == full.metrics["curves"]


def test_tensorboard_has_a_curve_per_experience(tmp_path, tiny_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run_experiment(tiny_config, out=tmp_path, overrides=["eval.every=2"])
    (events,) = result.run_dir.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"continual/acc/exp00", "continual/acc/exp02", "continual/min_acc"} <= set(tags)
    c = result.metrics["curves"]["streams"]["test"]["accuracy"]
    expected = [(it, v) for it, te, v in zip(c["iteration"], c["tested"], c["value"],
                                             strict=True) if te == 0]  # fmt: skip
    logged = [(e.step, e.value) for e in acc.Scalars("continual/acc/exp00")]
    assert [s for s, _ in logged] == [it for it, _ in expected]
    np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)


def test_report_table_and_figure(tmp_path, tiny_config):
    from clstm.report import write_report

    for seed in (0, 1):
        for strategy in ("naive", "replay"):
            run_experiment({**tiny_config, "strategy": {"name": strategy}}, seed=seed,
                           out=tmp_path / "runs", overrides=["eval.every=2"])  # fmt: skip
    report = write_report([tmp_path / "runs"], tmp_path / "report")
    text = report.markdown_path.read_text()
    assert "#### tiny: continual evaluation" in text and "| min-ACC | WC-ACC | WF |" in text
    assert (tmp_path / "report" / "tiny_continual.png").exists()
    assert "continual evaluation (mean" in (tmp_path / "report" / "report.tex").read_text()
    plain = write_report([tmp_path / "runs"], tmp_path / "r2", with_figures=False)
    assert "continual evaluation" in plain.markdown_path.read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategy": {"name": "separate"}}, "separate evaluates each experience with the model"),
        ({"eval": {"every": 2, "window": 1}}, "eval.window: 1 iterations is shorter"),
    ],
)
def test_refusals(tmp_path, tiny_config, change, message):
    config = {**tiny_config, **change}
    config["eval"] = {"every": 2, **change.get("eval", {})}
    with pytest.raises(ConfigError, match=message):
        run_experiment(config, out=tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_subsample_is_fixed_per_run_and_capped(tmp_path, tiny_config):
    first = run_experiment(
        tiny_config, out=tmp_path / "a", overrides=["eval.every=2", "eval.subsample=7"]
    )
    again = run_experiment(
        tiny_config, out=tmp_path / "b", overrides=["eval.every=2", "eval.subsample=7"]
    )
    assert first.metrics["curves"] == again.metrics["curves"]
    values = first.metrics["curves"]["streams"]["test"]["accuracy"]["value"]
    assert all(round(v * 7) == pytest.approx(v * 7) for v in values)  # 7 sequences each
    json.dumps(first.metrics)  # JSON-ready


def test_the_cost_benchmark_runs_in_quick_mode():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "bench_continual.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (
        "## 7. Continual evaluation" in done.stdout
        and "`eval.every: 50` with `eval.background: true`" in done.stdout
        and "GFLOP/s against one thread's sgemm peak" in done.stdout
    )
