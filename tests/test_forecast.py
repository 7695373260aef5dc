"""Regression targets and continual forecasting: errors, the error matrix, the forecasting
benchmark's protocol (no look-ahead, scaling on training data only), strategies and outputs."""

import json

import numpy as np
import pytest
import torch

from clstm.config import ConfigError
from clstm.data import forecast
from clstm.run.runner import load_run, run_experiment
from clstm.strategies import STRATEGIES
from clstm.targets import criterion, errors


def test_regression_loss_and_errors_on_hand_computed_values():
    output = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    y = torch.tensor([[0.0, 2.0], [2.0, -1.0]])  # errors 1, 0, -2, 0
    assert criterion("regression")(output, y).item() == pytest.approx((1 + 4) / 4)
    squared, absolute, count = errors(output, y)
    assert (squared.item(), absolute.item(), count) == (5.0, 3.0, 4)


def _config(**options):
    defaults = {"n_series": 4, "length": 120, "context": 16, "horizon": 2, "stride": 1}
    return forecast.Config(**{**defaults, **options})


def test_windows_never_look_ahead_across_the_time_split():
    config = _config()
    values = forecast.series(config, 0)
    cut = config.train_steps  # 90
    (x_tr, y_tr), (x_te, y_te) = forecast.split(config, 0)
    scaled = (values - values[:, :cut].mean()) / values[:, :cut].std()
    # training windows: inputs and targets inside the first `cut` steps (last target at cut-1)
    n_train = cut - 16 - 2 + 1
    assert len(x_tr) == 4 * n_train
    np.testing.assert_allclose(y_tr[n_train - 1], scaled[0, cut - 2 : cut], rtol=1e-5)
    # test windows: every target at or after the cut; the first starts exactly at it
    np.testing.assert_allclose(y_te[0], scaled[0, cut : cut + 2], rtol=1e-5)
    np.testing.assert_allclose(x_te[0, :, 0], scaled[0, cut - 16 : cut], rtol=1e-5)
    assert len(y_te) == 4 * (120 - 2 - cut + 1)


def test_scaling_is_fitted_on_the_training_part_only_and_regimes_differ():
    config = _config(length=400)
    (x_tr, _), (x_te, _) = forecast.split(config, 1)
    values = forecast.series(config, 1)
    train_part = values[:, : config.train_steps]
    raw_first = values[0, :16]
    expected = (raw_first - train_part.mean()) / train_part.std()
    np.testing.assert_allclose(x_tr[0, :, 0], expected, rtol=1e-5)  # training statistics
    assert abs(x_te.mean()) > 1e-4 or abs(x_te.std() - 1) > 1e-4  # not refitted on the test
    w0, p0 = forecast.regime(config, 0)
    w1, p1 = forecast.regime(config, 1)
    assert w0 != w1 and p0 != p1
    np.testing.assert_array_equal(values, forecast.series(config, 1))  # deterministic
    with pytest.raises(ValueError, match="shorter than context \\+ horizon"):
        _config(length=20)


TINY = {
    "name": "tiny_forecast", "device": "cpu",
    "benchmark": {"name": "forecast_regimes", "n_experiences": 3, "n_series": 4, "length": 120,
                  "context": 16, "horizon": 2},
    "model": {"hidden_size": 16}, "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
}  # fmt: skip
SUPPORTED = sorted(n for n, e in STRATEGIES.items() if "regression" in e.targets)


@pytest.mark.parametrize("strategy", SUPPORTED)
def test_every_supported_strategy_forecasts(tmp_path, strategy):
    cfg = {**TINY, "strategy": {"name": strategy}}
    if "domain" not in STRATEGIES[strategy].scenarios:  # hnet: a task embedding per task
        cfg["benchmark"] = {**TINY["benchmark"], "scenario": "task"}
    result = run_experiment(cfg, out=tmp_path)
    assert result.status == "completed", result.error
    assert result.accuracy_matrix is None and result.target == "regression"
    initial, E = result.error_matrices["mse"]
    rows = E[-1:] if strategy == "joint" else E
    assert np.all(rows >= 0) and not np.isnan(rows).any() and initial is not None
    again = run_experiment(cfg, out=tmp_path / "again")
    np.testing.assert_array_equal(again.error_matrices["mse"][1], E)  # deterministic


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - set(SUPPORTED)))
def test_strategies_that_need_classes_are_refused_for_forecasting(tmp_path, strategy):
    with pytest.raises(ConfigError, match="does not support regression targets"):
        run_experiment({**TINY, "strategy": {"name": strategy}}, out=tmp_path)


def test_naive_forgets_replay_and_der_forget_less_and_every_output_follows_the_target(tmp_path):
    bench = {**TINY["benchmark"], "n_series": 8, "length": 300, "context": 24, "horizon": 3}
    train = {"epochs": 6, "batch_size": 64, "lr": 0.005}
    results = {}
    memory = {
        "naive": {}, "replay": {"mem_size": 600}, "der": {"mem_size": 600, "alpha": 1.0},
        "coresets": {"coreset_size": 200, "alpha": 1.0},  # matches the teacher's forecasts
    }  # fmt: skip
    for strategy in memory:  # DER stores and matches each window's forecast
        cfg = {**TINY, "benchmark": bench, "train": train, "model": {"hidden_size": 32},
               "strategy": {"name": strategy, **memory[strategy]}}  # fmt: skip
        results[strategy] = run_experiment(cfg, out=tmp_path)
    naive = results["naive"].metrics
    _, E = results["naive"].error_matrices["mse"]
    assert E[0, 0] < 0.5 and E[-1, 0] > 2 * E[0, 0]  # learnt, then forgotten (error rises)
    assert naive["mse_forgetting"] > 0.2
    assert results["replay"].metrics["mse_forgetting"] < 0.5 * naive["mse_forgetting"]
    assert results["der"].metrics["mse_forgetting"] < 0.5 * naive["mse_forgetting"]
    assert results["coresets"].metrics["mse_forgetting"] < 0.5 * naive["mse_forgetting"]
    # metrics.json: error matrices and summaries, the accuracy keys present and null
    m = json.loads((results["naive"].run_dir / "metrics.json").read_text())
    assert m["target"] == "regression" and m["accuracy_matrix"] is None and m["acc"] is None
    np.testing.assert_allclose(m["error_matrix_mse"], E)
    assert m["mae_final"] > 0 and len(m["initial_error_mae"]) == 3
    assert (results["naive"].run_dir / "error_matrix_mse.csv").exists()
    assert not (results["naive"].run_dir / "accuracy_matrix.csv").exists()
    loaded = load_run(results["naive"].run_dir)
    np.testing.assert_array_equal(loaded.error_matrices["mse"][1], E)
    # TensorBoard: the error of every experience and the summaries, no accuracy
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(results["naive"].run_dir)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"error/mse/exp00", "error/mae/exp02", "cl/mse_forgetting", "cl/mse_final"} <= tags
    assert not any(t.startswith("accuracy/") for t in tags)


def test_tensorboard_of_forecasts_shows_errors_only_and_the_joint_final_error(tmp_path):
    """The experiment's Custom Scalars hold error charts alone (no empty accuracy charts), its
    HParams the error metrics, and a joint run (last row only) its final errors as scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2

    from clstm.run.sweep import run_sweep

    run_sweep(TINY, seeds=(0,), grid={"strategy.name": ["naive", "joint"]}, out=tmp_path)
    root = tmp_path / "tiny_forecast"
    events = EventAccumulator(str(root)).Reload()
    layout = layout_pb2.Layout.FromString(
        events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    charts = [list(c.multiline.tag) for c in layout.category[0].chart]
    assert charts == [["^cl/mse_final$"], ["^cl/mse_forgetting$"]]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {
        "cl/mse_final", "cl/mse_increase", "cl/mse_forgetting", "cl/mse_learning"
    }  # fmt: skip
    joint = load_run(root / "joint" / "seed0")
    scalars = EventAccumulator(str(joint.run_dir)).Reload()
    for m in ("mse", "mae"):
        (final,) = scalars.Scalars(f"cl/{m}_final")
        assert final.step == 3 and final.value == pytest.approx(joint.metrics[f"{m}_final"])
    assert "cl/mse_forgetting" not in scalars.Tags()["scalars"]  # needs intermediate models


FIRED = []  # module state: a checkpoint restores plugins, not this list


def test_resume_after_an_interruption_gives_the_same_forecasting_run(tmp_path):
    from avalanche.training.plugins import SupervisedPlugin

    FIRED.clear()

    class StopOnce(SupervisedPlugin):
        def before_training_iteration(self, strategy, **kwargs):
            if not FIRED and strategy.clock.train_exp_counter == 1:
                FIRED.append(True)
                raise KeyboardInterrupt

    cfg = {**TINY, "strategy": {"name": "ewc"}}
    full = run_experiment(cfg, out=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, out=tmp_path / "cut", plugins=[StopOnce()])
    resumed = run_experiment(cfg, out=tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(resumed.error_matrices["mse"][1], full.error_matrices["mse"][1])


def test_report_tabulates_errors_with_the_lowest_in_bold(tmp_path):
    from clstm.report import write_report

    for strategy in ("naive", "replay"):
        for seed in (0, 1):
            run_experiment({**TINY, "strategy": {"name": strategy}}, seed=seed, out=tmp_path)
    report = write_report([tmp_path], out=tmp_path / "report", with_figures=True)
    md = report.markdown_path.read_text()
    assert "| run | seeds | final MSE | MSE increase | MSE forgetting |" in md
    assert "ACC" not in report.table and "final MSE" in report.table
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    finals = {
        name: float(rows[name].split("|")[3].strip(" *").split("±")[0])
        for name in ("naive", "replay")
    }
    best = min(finals, key=finals.get)
    assert rows[best].split("|")[3].strip().startswith("**")  # lower is better: the minimum
    assert (tmp_path / "report" / "tiny_forecast_mse.png").exists()


def test_lwf_distillation_terms_by_target_kind():
    from clstm.targets import kind_named

    def distillation(kind, *args):
        return kind_named(kind).distill(*args)

    prev = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])  # (1 sequence, 2 steps, 2 units)
    out = torch.tensor([[[0.0, 0.0], [5.0, -5.0]]])
    steps = torch.tensor([[1.0, 0.0]])  # the second step is padding: never distilled
    q = torch.softmax(prev[0, 0] / 2, dim=-1)
    kl = (q * (q.log() - torch.log_softmax(out[0, 0] / 2, dim=-1))).sum()
    assert distillation("per_step", out, prev, steps, 2.0).item() == pytest.approx(kl.item())
    p = torch.sigmoid(prev[0, 0] / 2)
    s = torch.sigmoid(out[0, 0] / 2)
    bce = -(p * s.log() + (1 - p) * (1 - s).log()).sum()
    assert distillation("per_step_bits", out, prev, steps, 2.0).item() == pytest.approx(bce.item())
    assert distillation("per_step", prev, prev, steps, 2.0).item() == pytest.approx(0, abs=1e-7)
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    assert distillation("regression", a, b, None, 2.0).item() == pytest.approx(2.5)


def test_lwf_distils_forecasts_and_forgets_less_than_fine_tuning(tmp_path):
    bench = {**TINY["benchmark"], "n_series": 8, "length": 300, "context": 24, "horizon": 3}
    train = {"epochs": 6, "batch_size": 64, "lr": 0.005}
    forgetting = {}
    for name, strategy in (("naive", {"name": "naive"}), ("lwf", {"name": "lwf", "alpha": 5.0})):
        cfg = {**TINY, "benchmark": bench, "train": train, "model": {"hidden_size": 32},
               "strategy": strategy}  # fmt: skip
        forgetting[name] = run_experiment(cfg, out=tmp_path).metrics["mse_forgetting"]
    assert forgetting["lwf"] < 0.8 * forgetting["naive"], forgetting


# --- forecast_aeon: the real series that ship inside the aeon wheel (read for real, offline) ---


def _aeon_config(**options):
    from clstm.data import forecast_aeon

    return forecast_aeon.Config(**options)


def test_aeon_series_are_split_in_time_without_look_ahead():
    from clstm.data import forecast_aeon

    airline = forecast_aeon.load_source("airline")[0]
    assert airline.shape == (144,) and airline[:3].tolist() == [112, 118, 132]  # Box & Jenkins
    config = _aeon_config(sources=("airline",), standardize=False, relative=False)
    (x_tr, y_tr), (x_te, y_te) = forecast_aeon.split(config, "airline")
    cut = int(144 * 0.75)
    assert len(y_tr) == cut - 12 - 2 + 1 and y_tr[-1, -1] == airline[cut - 1]  # inside training
    assert y_te[0, 0] == airline[cut] and y_te[-1, -1] == airline[-1]  # targets after the cut
    np.testing.assert_array_equal(x_te[0, :, 0], airline[cut - 12 : cut])  # its past, reaching back
    uschange = forecast_aeon.load_source("uschange")
    assert len(uschange) == 5 and {len(s) for s in uschange} == {187}


def test_aeon_series_are_scaled_on_their_training_part_and_given_relative_to_the_last_value(
    monkeypatch,
):
    from clstm.data import forecast_aeon

    rising = np.arange(40.0) ** 1.5  # a trend: its test part lies beyond the training range
    monkeypatch.setattr(forecast_aeon, "load_source", lambda source: [rising, 10 * rising])
    absolute = _aeon_config(sources=("airline",), context=4, horizon=2, relative=False)
    (x_tr, y_tr), (x_te, y_te) = forecast_aeon.split(absolute, "airline")
    part = rising[:30]
    scaled = (rising - part.mean()) / part.std()  # training statistics only, per series
    np.testing.assert_allclose(x_tr[0, :, 0], scaled[:4], rtol=1e-6)
    np.testing.assert_allclose(y_te[-1], scaled[-2:], rtol=1e-6)
    half = len(x_tr) // 2  # the second series (10x the first) scales to the same values
    np.testing.assert_allclose(x_tr[half:], x_tr[:half], rtol=1e-5)
    naive = _aeon_config(sources=("airline",), context=4, horizon=2, relative=False, scale="naive")
    (x_n, _), _ = forecast_aeon.split(naive, "airline")
    spread = np.sqrt(np.mean(np.diff(part) ** 2))
    np.testing.assert_allclose(x_n[0, :, 0], (rising[:4] - part.mean()) / spread, rtol=1e-6)
    relative = _aeon_config(sources=("airline",), context=4, horizon=2)
    (xr_tr, yr_tr), (xr_te, yr_te) = forecast_aeon.split(relative, "airline")
    assert not xr_te[:, -1].any()  # every window ends at 0
    last = x_te[:, -1]  # the same windows, shifted by their last value (errors unchanged)
    np.testing.assert_allclose(yr_te + last, y_te, atol=1e-5)
    np.testing.assert_allclose(xr_te + last[:, None], x_te, atol=1e-5)


def test_aeon_sources_too_short_unknown_or_missing_are_refused(tmp_path, monkeypatch):
    from clstm.data import forecast_aeon
    from clstm.errors import DataError

    m1 = forecast_aeon.load_source("m1_yearly")
    assert len(m1) == 181 and min(map(len, m1)) == 15 and max(map(len, m1)) == 58
    (x, _), _ = forecast_aeon.split(_aeon_config(sources=("m1_yearly",)), "m1_yearly")
    assert len(x) > 0  # the series long enough are used, the others left out
    too_short = r"every 'shampoo' series is too short .* \(needs >= 40 steps\)"
    with pytest.raises(DataError, match=too_short):
        forecast_aeon.split(_aeon_config(sources=("shampoo",), context=28), "shampoo")
    with pytest.raises(ValueError, match="unknown source 'airlines'; choose from airline"):
        _aeon_config(sources=("airlines",))
    monkeypatch.setattr(forecast_aeon, "aeon_data_folder", lambda: tmp_path)
    (tmp_path / "Airline").mkdir()
    (tmp_path / "Airline" / "Airline.csv").write_text("Date,Passengers\n1949-01,112\n")
    with pytest.raises(DataError, match="no 'lynx' series .* sources present: airline$"):
        forecast_aeon.load_source("lynx")


def test_forecast_aeon_runs_offline_with_an_error_matrix_per_source(tmp_path):
    cfg = {
        "name": "tiny_aeon", "device": "cpu", "strategy": {"name": "naive"},
        "benchmark": {"name": "forecast_aeon", "sources": ["lynx", "airline", "shampoo"]},
        "model": {"hidden_size": 8}, "train": {"epochs": 1, "batch_size": 32},
    }  # fmt: skip
    result = run_experiment(cfg, out=tmp_path)
    initial, E = result.error_matrices["mse"]
    assert E.shape == (3, 3) and np.isfinite(E).all() and len(initial) == 3
    assert result.metrics["mse_final"] == pytest.approx(E[-1].mean())


def test_a_report_of_accuracy_and_error_runs_in_one_experiment_gives_each_its_own_table(
    tmp_path, tiny_config
):
    """A grid over benchmarks can put runs of both families in one experiment: each family gets
    its own table, columns and figures, never the other's columns (or an empty table)."""
    from clstm.report import write_report

    run_experiment(tiny_config, out=tmp_path)
    run_experiment({**TINY, "name": "tiny"}, out=tmp_path, run_name="forecast")
    report = write_report([tmp_path / "tiny"], out=tmp_path / "report")
    text = report.markdown_path.read_text()
    accuracy, errors = text.index("### tiny (accuracy)"), text.index("### tiny (MSE)")
    header = {t: text[i:].splitlines()[2] for t, i in (("acc", accuracy), ("mse", errors))}
    assert "ACC" in header["acc"] and "MSE" not in header["acc"]
    assert "final MSE" in header["mse"] and "ACC" not in header["mse"]
    tex = (tmp_path / "report" / "report.tex").read_text()
    for table in tex.split(r"\end{table}")[:-1]:  # every row has as many cells as columns
        spec = table.split(r"\begin{tabular}{")[1].split("}")[0]
        rows = [r for r in table.splitlines() if r.endswith(r"\\") and "&" in r]
        assert rows and all(r.count("&") == len(spec) - 1 for r in rows), table
    assert tex.count(r"\begin{table}") == 2
    made = {p.name for p in (tmp_path / "report").glob("*.png")}
    assert {"tiny_accuracy.png", "tiny_mse.png", "tiny_accuracy_matrices.png",
            "tiny_mse_matrices.png"} <= made  # fmt: skip
