"""clstm tune: the section's parsing and errors, the trials, the no-leak protocol, selection,
final runs, resume, the report, the command line and the Python API."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import clstm
from clstm.errors import ConfigError
from clstm.run.tunespec import parse_tune

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tunable(tiny_config) -> dict:
    """The tiny experiment with a validation split and a small lr search."""
    config = dict(tiny_config, name="tuned")
    config["benchmark"] = {**config["benchmark"], "validation": 0.25}
    config["tune"] = {"space": {"train.lr": [0.001, 0.05]}, "final_seeds": [0, 1]}
    return config


# -- the section ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({}, "tune.space: expected at least one"),
        ({"space": {}}, "tune.space: expected at least one"),
        ({"space": {"train.lr": []}}, "tune.space.train.lr: expected a non-empty list"),
        ({"space": {"train.lr": [0.1, 0.1]}}, "value 0.1 is listed twice"),
        ({"space": {"seed": [1, 2]}}, "'seed' cannot be tuned"),
        ({"space": {"eval.test": [True]}}, "'eval.test' cannot be tuned"),
        ({"space": {"benchmark.validation": [0.1]}}, "'benchmark.validation' cannot be tuned"),
        ({"space": {"train.lr": {"normal": [0, 1]}}}, "expected a list of values or one distri"),
        ({"space": {"train.lr": {"loguniform": [0, 1]}}, "samples": 2}, "loguniform needs low > 0"),
        ({"space": {"train.lr": {"uniform": [1, 0.1]}}, "samples": 2}, "needs low < high"),
        ({"space": {"train.epochs": {"randint": [1, 2.5]}}, "samples": 2}, "randint needs two int"),
        ({"space": {"train.lr": {"loguniform": [0.1, 1]}}}, "needs samples"),
        ({"space": {"train.lr": [0.1]}, "samples": 3}, "the space has no distribution"),
        ({"space": {"train.lr": [0.1]}, "metric": "accuracy"}, "tune.metric: unknown metric"),
        ({"space": {"train.lr": [0.1]}, "selection": "test"}, "choose split or experiences"),
        ({"space": {"train.lr": [0.1]}, "selection": "experiences"}, "needs tune.validation_exp"),
        ({"space": {"train.lr": [0.1]}, "validation_experiences": 2}, "is for selection: exp"),
        ({"space": {"train.lr": [0.1]}, "scheduler": "hyperband"}, "choose none or asha"),
        ({"space": {"train.lr": [0.1]}, "final_seeds": "4-1"}, "tune.seeds: range '4-1'"),
        ({"space": {"train.lr": [0.1]}, "seeds": [0, 0]}, "a seed is listed twice"),
        ({"space": {"train.lr": [0.1]}, "trials": 3}, "unknown key 'tune.trials'"),
        ("lr", "tune: expected a mapping"),
    ],
)
def test_every_bad_section_is_one_line_error(section, message):
    with pytest.raises(ConfigError) as info:
        parse_tune(section)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["tune"]["space"].update({"train.lrr": [0.1]}), "unknown key 'train.lrr'"),
        (lambda c: c["tune"]["space"].update({"train.lr": [0.1, -1]}), "tune.space.train.lr = -1"),
        (lambda c: c["benchmark"].update(validation=0.0), "set benchmark.validation"),
        (lambda c: c["benchmark"].update(experiences=[0, 1]), "benchmark.experiences is set by"),
        (lambda c: c["eval"].update(test=False), "eval.test is set by the tune"),
        (lambda c: c["tune"].update(metric="mse_final"), "mse_final is not recorded for one clas"),
        (
            lambda c: c["tune"].update(selection="experiences", validation_experiences=3),
            "validation_experiences: 3 leaves no experience",
        ),
        (lambda c: c["tune"].update(scheduler="asha"), "asha stops weak trials"),
        (
            lambda c: c["eval"].update(initial=False) or c["tune"].update(metric="fwt"),
            "fwt needs the untrained model's row",
        ),
    ],
)
def test_every_bad_tune_is_refused_before_anything_runs(tunable, tmp_path, change, message):
    change(tunable)
    with pytest.raises(ConfigError) as info:
        clstm.tune(tunable, out=tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_trials_are_the_grid_or_reproducible_draws():
    grid = parse_tune({"space": {"train.lr": [1, 2], "model.hidden_size": [8, 16, 32]}})
    assert grid.trials() == [
        {"train.lr": a, "model.hidden_size": b} for a in (1, 2) for b in (8, 16, 32)
    ]
    section = {"space": {"model.type": ["lstm", "gru"], "strategy.ewc_lambda":
                         {"loguniform": [1, 10000]}, "train.epochs": {"randint": [1, 3]}},
               "samples": 4}  # fmt: skip
    first, again = parse_tune(section).trials(), parse_tune(section).trials()
    assert first == again and len(first) == 8  # samples x grid, as Ray Tune's num_samples
    assert [t["model.type"] for t in first[:2]] == ["lstm", "gru"]
    lambdas = [t["strategy.ewc_lambda"] for t in first]
    assert all(1 <= v <= 10000 and float(f"{v:.4g}") == v for v in lambdas)
    assert len(set(lambdas)) == 8 and {t["train.epochs"] for t in first} <= {1, 2, 3}
    other = parse_tune({**section, "seed": 1}).trials()
    assert [t["strategy.ewc_lambda"] for t in other] != lambdas


# -- no leak ------------------------------------------------------------------------------------


def _digest(dataset) -> str:
    """A fingerprint of an experience's samples (their inputs), whatever its numbering."""
    h = hashlib.sha256()
    for i in range(len(dataset)):
        h.update(np.asarray(dataset[i][0]).tobytes())
    return h.hexdigest()


@pytest.fixture
def spy(monkeypatch):
    """Every experience trained on and every one evaluated (stream name, data), per run."""
    from clstm.run import protocol

    seen: list[dict] = []
    original = protocol._strategy

    def instrumented(cfg, bench, *args, **kwargs):
        strategy, matrices, tensorboard, done = original(cfg, bench, *args, **kwargs)
        record = {"seed": cfg.seed, "test": cfg.eval.test, "train": [], "eval": []}
        seen.append(record)
        train, evaluate = strategy.train, strategy.eval

        def spy_train(experience, *a, **k):
            record["train"].append(_digest(experience.dataset))
            return train(experience, *a, **k)

        def spy_eval(stream, *a, **k):
            for experience in stream:
                record["eval"].append((stream.name, _digest(experience.dataset)))
            return evaluate(stream, *a, **k)

        strategy.train, strategy.eval = spy_train, spy_eval
        return strategy, matrices, tensorboard, done

    monkeypatch.setattr(protocol, "_strategy", instrumented)
    return seen


def _stream_digests(config: dict) -> dict[str, list[str]]:
    from clstm.config import load_config
    from clstm.run.runner import build_benchmark

    raw = {k: v for k, v in config.items() if k != "tune"}
    bench = build_benchmark(load_config(raw))
    return {name: [_digest(e.dataset) for e in stream]
            for name, stream in bench.scenario.streams.items()}  # fmt: skip


def test_split_trials_never_evaluate_the_test_stream(tunable, tmp_path, spy):
    result = clstm.tune(tunable, out=tmp_path)
    streams = _stream_digests(tunable)
    trials, final = spy[:2], spy[2:]
    assert len(trials) == 2 and len(final) == 2
    for record in trials:
        assert {name for name, _ in record["eval"]} == {"valid"}
        evaluated = {d for _, d in record["eval"]}
        assert evaluated == set(streams["valid"]) and not evaluated & set(streams["test"])
        assert record["train"] == streams["train"]
    for record in final:  # the chosen setting: the ordinary protocol, test stream included
        assert {d for n, d in record["eval"] if n == "test"} == set(streams["test"])
    selection = json.loads((tmp_path / "tuned" / "tune" / "selection.json").read_text())
    for trial in selection["trials"]:
        run = tmp_path / "tuned" / "tune" / "tuned" / trial["run_name"] / "seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["acc"] is None and metrics["test_evaluated"] is False
        assert trial["scores"] == [metrics["validation"]["acc"]]
    assert result.best == max(selection["trials"], key=lambda t: t["score"])["values"]


def test_validation_tasks_and_final_stream_are_disjoint(tunable, tmp_path, spy):
    tunable["benchmark"].update(n_experiences=5, validation=0.0)
    tunable["tune"].update(selection="experiences", validation_experiences=2)
    result = clstm.tune(tunable, out=tmp_path)
    streams = _stream_digests(tunable)
    search = {*streams["train"][:2], *streams["test"][:2]}
    final = {*streams["train"][2:], *streams["test"][2:]}
    for record in spy[:2]:  # trials: the validation tasks only
        assert set(record["train"]) | {d for _, d in record["eval"]} == search
    for record in spy[2:]:  # final runs: the other tasks only, renumbered from 0
        assert set(record["train"]) | {d for _, d in record["eval"]} == final
    assert not search & final
    assert result.selection["search_experiences"] == [0, 1]
    assert result.selection["final_experiences"] == [2, 3, 4]
    assert result.final[0].experience_names == ["rule2", "rule3", "rule4"]
    assert result.final[0].accuracy_matrix.shape == (3, 3)


# -- selection, final runs, report --------------------------------------------------------------


def test_selection_final_runs_and_report(tunable, tmp_path):
    result = clstm.tune(tunable, out=tmp_path)
    folder = tmp_path / "tuned"
    selection = json.loads((folder / "tune" / "selection.json").read_text())
    assert {"best", "metric", "direction", "trials"} <= set(selection)
    assert selection["metric"] == "acc" and selection["direction"] == "higher"
    assert [t["values"] for t in selection["trials"]] == [{"train.lr": 0.001}, {"train.lr": 0.05}]
    assert all(t["seeds"] == [0] and len(t["scores"]) == 1 for t in selection["trials"])
    chosen = selection["best"]["train.lr"]
    runs = sorted((folder / "final" / "tuned").glob("naive_train.lr=*/seed*"))
    assert [r.name for r in runs] == ["seed0", "seed1"] and len(result.final) == 2
    for run in runs:
        meta = json.loads((run / "meta.json").read_text())
        assert meta["tune"]["best"] == {"train.lr": chosen}
        assert (run / meta["tune"]["selection"]).resolve() == (folder / "tune" / "selection.json")
        assert yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"] == chosen
    from clstm.report import write_report

    report = write_report([folder], tmp_path / "report")
    text = report.markdown_path.read_text()
    assert "trial000" not in report.table  # trials are not rows of the experiment's table
    assert f"naive_train.lr={chosen}" in report.table
    assert "selected on the validation split of every experience by ACC" in text
    assert "| trial000 | 0.001 | 1 |" in text and "selected |" in text
    assert (tmp_path / "report" / "tuned_search.png").exists()
    tex = (tmp_path / "report" / "report.tex").read_text()
    assert "hyperparameter search" in tex and r"\texttt{train.lr}" in tex


def test_ties_go_to_the_earlier_trial(tunable, tmp_path, monkeypatch):
    from clstm.run import tune as tune_module

    monkeypatch.setattr(tune_module, "trial_score", lambda run_dir, metric: 0.5)
    result = clstm.tune(tunable, out=tmp_path)
    assert result.selection["best_trial"] == "trial000" and result.best == {"train.lr": 0.001}


def test_lower_is_better_metrics_select_the_lowest(tunable, tmp_path):
    tunable["tune"]["metric"] = "forgetting"
    result = clstm.tune(tunable, out=tmp_path)
    scores = {t["run_name"]: t["score"] for t in result.selection["trials"]}
    assert result.selection["direction"] == "lower"
    assert result.selection["best_trial"] == min(scores, key=scores.get)


def test_a_changed_section_is_refused_on_resume(tunable, tmp_path):
    clstm.tune(tunable, out=tmp_path)
    with pytest.raises(ConfigError, match="holds a tune already; pass resume=True"):
        clstm.tune(tunable, out=tmp_path)
    again = clstm.tune(tunable, out=tmp_path, resume=True)  # nothing changed: all kept
    assert again.best == json.loads((tmp_path / "tuned/tune/selection.json").read_text())["best"]
    tunable["tune"]["space"]["train.lr"] = [0.001, 0.02]
    with pytest.raises(ConfigError, match=r"tuned with another tune: section \(space\.train\.lr"):
        clstm.tune(tunable, out=tmp_path, resume=True)


def test_python_benchmark_from_arrays(tmp_path, tiny_config):
    rng = np.random.default_rng(0)

    def data(n, shift):
        x = rng.normal(size=(n, 6, 2)).astype("float32")
        y = (x[:, :, 0].sum(1) > shift).astype(int)
        return x, y

    bench = clstm.benchmark_from_arrays([data(60, 0), data(60, 1)], [data(30, 0), data(30, 1)],
                                        validation=0.25)  # fmt: skip
    config = {k: v for k, v in tiny_config.items() if k != "benchmark"}
    result = clstm.tune(
        config,
        benchmark=bench,
        out=tmp_path,
        section={"space": {"train.lr": [0.001, 0.05]}, "final_seeds": [0]},
    )
    assert len(result.final) == 1 and result.final[0].metrics["acc"] is not None
    with pytest.raises(ConfigError, match="tuned in this process"):
        clstm.tune(
            config,
            benchmark=bench,
            out=tmp_path / "b",
            workers=2,
            section={"space": {"train.lr": [0.001]}},
        )


# -- the command line: the quickstart, a kill and a resume ---------------------------------------


def _quickstart_tune(tmp_path: Path, lrs: list[float], final_seeds: list[int]) -> Path:
    config = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    config["benchmark"].update(n_train=400, n_test=100, validation=0.2)
    config["train"]["epochs"] = 2
    config["tune"] = {"space": {"train.lr": lrs}, "final_seeds": final_seeds}
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _clstm(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "clstm.cli", *args], capture_output=True,
                          text=True, **kwargs)  # fmt: skip


def test_quickstart_tune_from_the_command_line(tmp_path):
    path = _quickstart_tune(tmp_path, [0.001, 0.01], [0, 1])
    out = tmp_path / "out"
    done = _clstm("tune", str(path), "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "[search 2/2] trial00" in done.stdout and "validation " in done.stdout
    assert "selected on the validation split of every experience by ACC" in done.stdout
    assert "final: 2 seed(s): ACC" in done.stdout
    refused = _clstm("run", str(path), "--out", str(out))
    assert refused.returncode == 2 and "has a tune: section" in refused.stderr
    report = _clstm("report", str(out / "quickstart"), "--out", str(tmp_path / "r"))
    assert report.returncode == 0 and "naive_train.lr=" in report.stdout


def test_resume_after_sigkill_reruns_nothing_finished(tmp_path):
    path = _quickstart_tune(tmp_path, [0.001, 0.003, 0.01, 0.03], [0])
    out = tmp_path / "out"
    trials = out / "quickstart" / "tune" / "quickstart"
    proc = subprocess.Popen([sys.executable, "-m", "clstm.cli", "tune", str(path), "--out",
                             str(out), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    first = trials / "trial000" / "seed0" / "metrics.json"
    while not first.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the first trial did not finish in time"
    finished = {p: p.stat().st_mtime_ns for p in trials.glob("trial*/seed0/metrics.json")}
    assert not (out / "quickstart" / "tune" / "selection.json").exists()
    done = _clstm("tune", str(path), "--out", str(out), "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    for p, mtime in finished.items():  # finished trials were kept as they were
        assert p.stat().st_mtime_ns == mtime
    selection = json.loads((out / "quickstart" / "tune" / "selection.json").read_text())
    assert all(t["score"] is not None for t in selection["trials"])


@pytest.mark.slow
def test_ray_and_local_select_the_same(tunable, tmp_path):
    pytest.importorskip("ray.tune")
    local = clstm.tune(tunable, out=tmp_path / "local")
    ray = clstm.tune(tunable, out=tmp_path / "ray", engine="ray")
    assert ray.selection["best"] == local.selection["best"]
    assert [t["scores"] for t in ray.selection["trials"]] == [
        t["scores"] for t in local.selection["trials"]
    ]
    assert [r.metrics["acc"] for r in ray.final] == [r.metrics["acc"] for r in local.final]


def test_kept_experiences_are_renumbered_task_labels_included(tiny_config):
    """Avalanche's update_data_attribute keeps the old task labels as an instance attribute;
    clstm.data.subset replaces both, so items and the attribute say the new task."""
    from clstm.config import load_config
    from clstm.run.runner import build_benchmark

    config = {**tiny_config, "benchmark": {**tiny_config["benchmark"], "scenario": "task",
                                           "experiences": [1, 2]}}  # fmt: skip
    bench = build_benchmark(load_config(config))
    assert bench.experience_names == ["rule1", "rule2"]
    for position, experience in enumerate(bench.scenario.train_stream):
        dataset = experience.dataset
        assert experience.task_labels == [position] and experience.current_experience == position
        assert set(dataset.targets_task_labels) == {position} and dataset[0][2] == position
    with pytest.raises(ConfigError, match="experiences: 3 is not an experience of this stream"):
        build_benchmark(load_config({**config, "benchmark": {**config["benchmark"],
                                                             "experiences": [3]}}))  # fmt: skip
    with pytest.raises(ConfigError, match="increasing order"):
        load_config({**config, "benchmark": {**config["benchmark"], "experiences": [2, 1]}})


def test_eval_test_false_needs_a_validation_split(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match="eval.test: false evaluates the validation stream"):
        clstm.run_experiment({**tiny_config, "eval": {"test": False}}, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", sorted((ROOT / "experiments" / "tune").glob("*.yaml")),
                         ids=lambda p: p.stem)  # fmt: skip
def test_shipped_tunes_are_valid(path):
    from clstm.run.tune import read_tune_file
    from clstm.run.tunespec import check_against

    raw, section = read_tune_file(path)
    spec = parse_tune(section)
    check_against(spec, raw)
    assert spec.final_seeds == (0, 1, 2, 3, 4) and spec.seeds == (0,)
    assert path.stem in (ROOT / "experiments" / "tune.sh").read_text()  # run by it


@pytest.mark.slow
def test_asha_stops_weak_trials_and_a_resume_does_not_rerun_them(tunable, tmp_path):
    pytest.importorskip("ray.tune")
    tunable["benchmark"]["n_experiences"] = 4
    tunable["tune"].update(
        scheduler="asha",
        final_seeds=[0],
        space={"train.lr": [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]},
    )
    result = clstm.tune(tunable, out=tmp_path, engine="ray")
    trials = result.selection["trials"]
    stopped = [t["run_name"] for t in trials if t["stopped_early"]]
    assert stopped and len(stopped) < len(trials) and not result.failed
    assert all(t["score"] is None for t in trials if t["stopped_early"])
    assert result.selection["best_trial"] not in stopped
    runs = tmp_path / "tuned" / "tune" / "tuned"
    for name in stopped:
        metrics = json.loads((runs / name / "seed0" / "metrics.json").read_text())
        assert metrics["status"] == "interrupted" and "ASHA" in metrics["error"]
    again = clstm.tune(tunable, out=tmp_path, engine="ray", resume=True)
    assert [t["run_name"] for t in again.selection["trials"] if t["stopped_early"]] == stopped
