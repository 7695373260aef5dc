"""The `clstm` command: exit codes, one-line errors, concise output, cheap start-up."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import clstm
from clstm import cli
from clstm.run.runner import RunResult

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_yaml(tmp_path, tiny_config):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    return path


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"clstm {clstm.__version__}"
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    assert "run" in capsys.readouterr().out


def test_list_names_benchmarks_and_strategies(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("synthetic", "seq_digits", "ucr_stream", "naive"))
    assert 'mem_size=200, policy="auto"' in out  # each strategy's hyperparameters


def test_help_version_and_list_do_not_import_torch_or_avalanche():
    def imported(commands: str) -> str:
        code = (
            "import sys, contextlib, io; from clstm.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    for a in {commands}:\n"
            "        try: main(a)\n"
            "        except SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'avalanche', 'numpy') if m in sys.modules))\n"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert imported("(['--help'], ['--version'], ['run', '--help'])") == "[]"
    # listing reads the benchmarks' option classes (scenarios), which import numpy (~0.1 s)
    assert imported("(['list'], ['data', 'list'])") == "['numpy']"


def test_quiet_run_prints_only_the_summary(tiny_yaml, tmp_path, capsys):
    assert cli.main(["run", str(tiny_yaml), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "epoch" not in out and "eval before" not in out
    assert out.startswith("completed: tiny / naive / seed 0")
    assert "ACC " in out and "BWT " in out and "forgetting " in out
    assert f"tensorboard --logdir {tmp_path / 'r' / 'tiny'}" in out


def test_the_summary_prints_no_negative_zero(tmp_path):
    """A BWT of -0.0002 rounds to zero: printed +0.000 (as in the report), never -0.000."""
    metrics = {
        "status": "completed", "experiment": "e", "strategy": "naive", "seed": 0,
        "experiences_trained": 2, "wall_time_s": 1.0, "error": None, "acc": 0.5,
        "bwt": -0.0002, "forgetting": -0.0001, "fwt": -0.0123, "learning_accuracy": 0.9,
    }  # fmt: skip
    result = RunResult(
        metrics=metrics, experience_names=["a", "b"], status="completed", initial_accuracy=None,
        accuracy_matrix=np.array([[0.9, float("nan")], [0.5, 0.5]]), run_dir=tmp_path / "run",
    )  # fmt: skip
    text = cli.summary_text(result, tmp_path)
    assert "-0.000" not in text
    assert "ACC 0.500   BWT +0.000   forgetting 0.000   FWT -0.012   learning accuracy 0.900" in (
        text
    )


def test_progress_is_one_line_per_epoch_and_per_evaluation(tiny_yaml, tmp_path, capsys):
    args = ["run", str(tiny_yaml), "--out", str(tmp_path), "--seed", "4", "--set", "train.epochs=3"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("epoch" in line for line in lines if not line.startswith("results:")) == 3 * 3
    assert sum(line.strip().startswith("eval ") for line in lines) == 1 + 3
    assert (tmp_path / "tiny" / "naive_train.epochs=3" / "seed4" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.lr=-1"], "train.lr: -1.0 is out of range"),
        (["--set", "model.kind=gru"], "unknown key 'model.kind'"),
        (["--seed", "-3"], "--seed must be >= 0"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tiny_yaml, tmp_path, capsys, args, message):
    assert cli.main(["run", str(tiny_yaml), "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clstm: error: ") and message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_bad_config_file_from_the_shell_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hidden_size: lots\n")
    for config in (str(bad), str(tmp_path / "missing.yaml")):
        proc = subprocess.run(
            [sys.executable, "-m", "clstm.cli", "run", config, "--out", str(tmp_path / "r")],
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("clstm: error: ")
    assert not (tmp_path / "r").exists()


def test_existing_run_is_refused_with_exit_2(tiny_yaml, tmp_path, capsys):
    args = ["run", str(tiny_yaml), "--out", str(tmp_path), "--quiet", "--set", "train.epochs=1"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main([*args, "--overwrite"]) == 0


def test_diverged_run_exits_1_and_says_why(monkeypatch, tiny_yaml, tmp_path, capsys):
    nan = float("nan")
    result = RunResult(
        run_dir=tmp_path / "tiny" / "naive" / "seed0",
        status="diverged",
        metrics={
            "experiment": "tiny",
            "strategy": "naive",
            "seed": 0,
            "status": "diverged",
            "error": "training loss became nan in experience 2",
            "experiences_trained": 1,
            "wall_time_s": 1.0,
            "acc": None,
            "bwt": None,
            "forgetting": None,
            "fwt": None,
            "learning_accuracy": None,
        },  # fmt: skip
        accuracy_matrix=np.array([[0.9, 0.3], [nan, nan]]),
        initial_accuracy=None,
        experience_names=["a", "b"],
        error="training loss became nan in experience 2",
    )
    monkeypatch.setattr("clstm.run.runner.run_experiment", lambda *a, **k: result)
    assert cli.main(["run", str(tiny_yaml), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("diverged: tiny / naive / seed 0")
    assert "loss became nan" in out and "ACC n/a" in out


def test_threads_are_set_and_recorded(tiny_yaml, tmp_path, capsys):
    import json

    args = ["run", str(tiny_yaml), "--out", str(tmp_path), "--quiet", "--threads", "1"]
    args += ["--set", "benchmark.n_experiences=1"]
    assert cli.main(args) == 0
    run = tmp_path / "tiny" / "naive_benchmark.n_experiences=1" / "seed0"
    assert json.loads((run / "meta.json").read_text())["torch_threads"] == 1
    assert cli.main([*args[:6], "0"]) == 2
    assert "--threads must be an integer >= 1, got 0" in capsys.readouterr().err
