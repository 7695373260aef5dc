"""Hostile input on configs, names, the command line and reports: a one-line refusal naming what
is wrong and the fix, never a silent wrong number, a lost number or a write elsewhere."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import yaml

from clstm import cli
from clstm.config import ConfigError, load_config
from clstm.run.runner import run_experiment


def _cli(args, capsys) -> tuple[int, str]:
    code = cli.main(args)
    return code, capsys.readouterr().err.strip()


# --------------------------------------------------------------------------------------------------
# Non-finite numbers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({}, "train.lr"),
        ({}, "train.orthogonal_reg"),
        ({"benchmark": {"name": "forecast_regimes"}}, "benchmark.noise"),
        ({"benchmark": {"name": "forecast_regimes"}}, "benchmark.amplitude"),
        ({"strategy": {"name": "si"}}, "strategy.eps"),
    ],
)
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "inf", "nan"])
def test_non_finite_numbers_are_refused_for_every_float_option(section, key, value):
    with pytest.raises(ConfigError, match=f"{key}: .* is not a finite number"):
        load_config(section, [f"{key}={value}"])
    with pytest.raises(ConfigError, match="is not a finite number"):
        *path, last = key.split(".")
        load_config({**section, path[0]: {**section.get(path[0], {}), last: math.inf}})


# --------------------------------------------------------------------------------------------------
# Names and the command line
# --------------------------------------------------------------------------------------------------


def test_a_name_over_120_characters_is_refused_for_its_length(tiny_config, tmp_path, capsys):
    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump({**tiny_config, "name": "a" * 121}))
    code, err = _cli(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "is 121 characters long" in err and "at most 120" in err
    config.write_text(yaml.safe_dump(tiny_config))
    code, err = _cli(["run", str(config), "--out", str(tmp_path), "--name", "b" * 121], capsys)
    assert code == 2 and err.startswith("clstm: error: --name is 121 characters long")


def test_a_file_name_that_cannot_be_a_name_says_the_name_came_from_it(tiny_config, tmp_path):
    del tiny_config["name"]
    path = tmp_path / "my exp.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    with pytest.raises(ConfigError, match=r"its file name 'my exp' cannot be the experiment's"):
        load_config(path)
    from clstm.run.grid import read_sweep_file

    with pytest.raises(ConfigError, match="add name: to the file or rename it"):
        read_sweep_file(path)


def test_a_folder_or_a_device_as_the_config_is_named_as_such(tmp_path, capsys):
    code, err = _cli(["run", str(tmp_path)], capsys)
    assert code == 2 and "is a folder, not a config file" in err
    code, err = _cli(["run", "/dev/null"], capsys)
    assert code == 2 and "is not a regular file" in err
    code, err = _cli(["run", str(tmp_path / "absent.yaml")], capsys)
    assert code == 2 and "config file not found" in err


def test_a_key_set_twice_names_the_run_by_the_value_used(tiny_config, tmp_path):
    result = run_experiment(
        tiny_config, out=tmp_path, overrides=["train.epochs=3", "train.epochs=1"]
    )
    assert result.run_dir.parent.name == "naive_train.epochs=1"
    assert load_config(result.run_dir / "config.yaml").train.epochs == 1


def test_a_key_both_set_and_swept_is_refused(tiny_config, tmp_path):
    from clstm.run.sweep import run_sweep

    with pytest.raises(ConfigError, match=r"train.lr is both set \(--set\) and swept"):
        run_sweep(tiny_config, grid={"train.lr": [0.1, 0.2]}, overrides=["train.lr=0.3"],
                  out=tmp_path)  # fmt: skip


def test_fwt_is_zero_in_the_task_scenario_only_with_a_class_per_sequence(tiny_config, tmp_path):
    """What docs/data.md says: heads made when a task arrives (a class per sequence) give FWT 0
    exactly; the other kinds' heads are made up front and read an encoder earlier tasks changed."""
    classes = {**tiny_config, "benchmark": {**tiny_config["benchmark"], "scenario": "task"}}
    assert run_experiment(classes, out=tmp_path / "classes").metrics["fwt"] == 0
    bits = {**tiny_config, "benchmark": {"name": "copy", "n_experiences": 3, "n_train": 32,
                                         "n_test": 16, "input_len": 3, "width": 3},
            "model": {"type": "rnn", "hidden_size": 8}}  # fmt: skip
    assert run_experiment(bits, out=tmp_path / "bits").metrics["fwt"] != 0
    text = (Path(__file__).resolve().parent.parent / "docs" / "data.md").read_text()
    assert "FWT is 0 by construction\n(with a class per sequence;" in text


# --------------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, make_tiny_config):
    out = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        run_experiment(make_tiny_config(), out=out, seed=seed)
    return out


def test_an_empty_report_path_is_refused_not_the_current_folder(two_runs, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for option in ("--out", "--markdown", "--archive", "--published"):
        code, err = _cli(["report", str(two_runs), option, ""], capsys)
        assert code == 2 and f"report {option} is empty" in err, err
    assert list(tmp_path.iterdir()) == []


def test_columns_that_apply_to_no_table_are_refused_before_anything_is_written(
    two_runs, tmp_path, capsys
):
    out = tmp_path / "report"
    code, err = _cli(["report", str(two_runs), "--out", str(out), "--columns", "mse_final"],
                     capsys)  # fmt: skip
    assert code == 2 and "--columns: none of mse_final is a metric of the runs of tiny" in err
    assert not out.exists()


def test_a_tex_caption_is_escaped_text(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    caption = "50% of {experiment} & more_than_that #1"
    assert cli.main(["report", str(two_runs), "--out", str(out), "--no-figures",
                     "--tex-caption", caption]) == 0  # fmt: skip
    tex = (out / "report.tex").read_text()
    assert r"\caption{50\% of tiny \& more\_than\_that \#1}" in tex


def test_a_report_that_cannot_be_written_names_the_path(two_runs, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.tex").mkdir()  # a folder where the file must go
    code, err = _cli(["report", str(two_runs), "--out", str(out), "--no-figures"], capsys)
    assert code == 1 and "cannot write the report's report.tex to" in err
    assert str(out) in err and "\n" not in err


def test_figures_of_long_run_names_say_the_shared_values_once_and_warn_nothing(
    make_tiny_config, tmp_path
):
    import matplotlib

    matplotlib.use("Agg")
    from clstm.report import collect
    from clstm.report.figures import accuracy_figure, matrices_figure

    overrides = ["benchmark.n_train=48", "train.epochs=1", "model.hidden_size=6"]
    for strategy in ("naive", "lwf"):
        config = {**make_tiny_config(), "strategy": {"name": strategy}}
        run_experiment(config, out=tmp_path, overrides=overrides)
    groups = collect(tmp_path)["tiny"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Tight layout not applied", nothing else
        curves, panels = accuracy_figure("tiny", groups), matrices_figure(groups)
        curves.canvas.draw()
        panels.canvas.draw()
    labels = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert labels == ["lwf", "naive"]
    assert "all rows: benchmark.n_train=48, train.epochs=1, model.hidden_size=6" in (
        curves.axes[0].get_title().replace("\n", " ")
    )
    assert sorted(ax.get_title() for ax in panels.axes if ax.get_title()) == ["lwf", "naive"]
