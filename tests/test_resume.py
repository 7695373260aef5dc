"""Checkpoints and --resume: a run killed mid-experience continues to the same numbers."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from avalanche.training.plugins import SupervisedPlugin

from clstm.config import ConfigError
from clstm.report import recorded_cpu
from clstm.run import provenance
from clstm.run.runner import _earlier_wall_time, run_experiment

CONFIG = {
    "name": "killed", "device": "cpu",
    "benchmark": {"name": "synthetic", "n_experiences": 3, "n_train": 600, "n_test": 100,
                  "seq_len": [5, 20], "n_features": 4, "n_classes": 3},
    "model": {"hidden_size": 16}, "train": {"epochs": 4, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def _metrics(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    return {k: m[k] for k in ("accuracy_matrix", "initial_accuracy", "acc", "bwt", "forgetting")}


@pytest.mark.parametrize("strategy", ["replay"])
def test_sigkill_during_the_second_experience_then_resume(tmp_path, strategy, capsys):
    config = {**CONFIG, "strategy": {"name": strategy}}
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    run_dir = out / "killed" / strategy / "seed0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clstm.cli", "run", str(path), "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while not (run_dir / "checkpoint.pt").exists():  # written after the first experience
            assert proc.poll() is None and time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the second experience
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = json.loads((run_dir / "meta.json").read_text())
    assert killed["status"] == "running"
    with pytest.raises(ConfigError, match="already holds a run"):
        run_experiment(path, out=out)  # not without --resume
    # As if the run had been started on another machine: the resume says so and records both
    killed["cpu"] = "Another CPU"
    (run_dir / "meta.json").write_text(json.dumps(killed))
    resumed = run_experiment(path, out=out, resume=True)
    assert "with another CPU than it started with" in capsys.readouterr().err
    uninterrupted = run_experiment(path, out=tmp_path / "full")
    assert resumed.status == "completed"
    assert _metrics(run_dir) == _metrics(uninterrupted.run_dir)
    assert not (run_dir / "checkpoint.pt").exists()  # removed once complete (checkpoint: remove)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert len(meta["resumed"]) == 1 and len(meta["timings"]) == 3
    again = meta["resumed"][0]  # the resuming process's own provenance
    assert again["changed"] == ["CPU"] and again["cpu"] == provenance.cpu_model()
    assert again["git"] == meta["git"] and again["packages"] == meta["packages"]
    # The wall time counts the killed process's time up to its checkpoint, and this one's
    assert again["earlier_wall_time_s"] == killed["elapsed_s"] > 0
    assert meta["wall_time_s"] > killed["elapsed_s"] + sum(
        t["train_s"] for t in meta["timings"][len(killed["timings"]) :]
    )
    cpu = recorded_cpu(run_dir)  # the report's "Measured on" names both
    assert cpu == f"Another CPU, resumed on {provenance.cpu_model()}"
    # One events file per process that logged, none left empty by the resume's throwaway logger
    events = sorted(run_dir.glob("events.out.tfevents.*"))
    assert len(events) == 2
    assert all(_events_in(path) > 1 for path in events)  # more than the file-version header


# Dies like SIGKILL just after the second experience's checkpoint, before its meta.json write
KILLED_BETWEEN_WRITES = """
import os, sys
import clstm.run.checkpoint as checkpoint
import clstm.run.runner as runner  # the writer of meta.json
from clstm.cli import main
saved, write = [], runner.write_json_atomic
def save(strategy, path, _save=checkpoint.save_strategy):
    _save(strategy, path)
    saved.append(path)
def write_json(path, data):
    if len(saved) == 2:
        os._exit(9)
    write(path, data)
checkpoint.save_strategy, runner.write_json_atomic = save, write_json
main(sys.argv[1:])
"""


def test_a_run_killed_between_its_checkpoint_and_meta_resumes_with_the_checkpoints_progress(
    tmp_path,
):
    """meta.json lags the checkpoint by one experience: the resumed run's timings, experiences
    trained and wall time come from the checkpoint, not one experience short."""
    config = {**CONFIG, "strategy": {"name": "naive"},
              "train": {**CONFIG["train"], "epochs": 1}}  # fmt: skip
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    run_dir = out / "killed" / "naive" / "seed0"
    cmd = [sys.executable, "-c", KILLED_BETWEEN_WRITES, "run", str(path), "--out", str(out)]
    assert subprocess.run(cmd, capture_output=True).returncode == 9
    killed = json.loads((run_dir / "meta.json").read_text())
    assert killed["status"] == "running" and len(killed["timings"]) == 1  # one behind
    resumed = run_experiment(path, out=out, resume=True)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert [t["experience"] for t in meta["timings"]] == ["rule0", "rule1", "rule2"]
    assert resumed.metrics["experiences_trained"] == 3
    earlier = meta["resumed"][0]["earlier_wall_time_s"]
    assert earlier > killed["elapsed_s"]  # up to the second experience, not the first
    assert meta["wall_time_s"] > earlier + meta["timings"][2]["train_s"]
    assert _metrics(run_dir) == _metrics(run_experiment(path, out=tmp_path / "full").run_dir)


def test_a_run_recorded_before_elapsed_time_resumes_from_its_experiences_times():
    """Runs recorded before ``elapsed_s`` (the archived Copy Task runs): the earlier processes'
    time is their experiences' training and evaluation times and the initial evaluation."""
    meta = {"initial_eval_s": 0.5, "timings": [{"train_s": 10.0, "eval_s": 1.0},
                                               {"train_s": 20.0, "eval_s": 2.0}]}  # fmt: skip
    assert _earlier_wall_time(meta) == 33.5
    assert _earlier_wall_time({**meta, "elapsed_s": 40.0}) == 40.0
    assert _earlier_wall_time({"timings": []}) == 0.0


def _events_in(path) -> int:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return sum(1 for _ in EventFileLoader(str(path)).Load())


FIRED = []


class StopOnce(SupervisedPlugin):
    """Interrupts the second experience once (module state, not restored by checkpoints)."""

    def before_training_iteration(self, strategy, **kwargs):
        if not FIRED and strategy.clock.train_exp_counter == 1:
            FIRED.append(True)
            raise KeyboardInterrupt


EHRET_EWC = {"name": "ewc", "mode": "online", "fisher": "per_sample", "fisher_samples": 20}
EHRET_SI = {"name": "si", "max_importance": None, "nonnegative": True, "task_loss_only": True}


@pytest.mark.parametrize(
    "strategy",
    ["ewc", "si", "lwf", "gem", "der", "agem", "coresets", EHRET_EWC, EHRET_SI],
    ids=["ewc", "si", "lwf", "gem", "der", "agem", "coresets", "ewc_per_sample",
         "si_task_loss_only"],
)  # fmt: skip
def test_resume_restores_method_state(tmp_path, tiny_config, strategy):
    FIRED.clear()
    tiny_config["strategy"] = strategy if isinstance(strategy, dict) else {"name": strategy}
    full = run_experiment(tiny_config, out=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_config, out=tmp_path / "cut", plugins=[StopOnce()])
    resumed = run_experiment(tiny_config, out=tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(resumed.accuracy_matrix, full.accuracy_matrix)


def test_resume_skips_completed_runs_and_refuses_a_changed_config(tmp_path, tiny_config):
    first = run_experiment(tiny_config, out=tmp_path, overrides=["checkpoint=keep"])
    assert (first.run_dir / "checkpoint.pt").exists()  # kept as configured
    before = (first.run_dir / "metrics.json").read_bytes()
    again = run_experiment(tiny_config, out=tmp_path, resume=True, overrides=["checkpoint=keep"])
    assert (first.run_dir / "metrics.json").read_bytes() == before  # skipped, untouched
    np.testing.assert_array_equal(again.accuracy_matrix, first.accuracy_matrix)
    (first.run_dir / "metrics.json").unlink()  # as if it had been killed
    meta = json.loads((first.run_dir / "meta.json").read_text())
    (first.run_dir / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    changed = r"holds a run of a different config \(train.lr 0.01 vs 0.5"
    with pytest.raises(ConfigError, match=changed):
        run_experiment(
            tiny_config, out=tmp_path, resume=True, overrides=["checkpoint=keep", "train.lr=0.5"],
            run_name=first.run_dir.parent.name,
        )  # fmt: skip


def test_loading_a_checkpoint_writes_nothing_into_the_run_directory(tmp_path, tiny_config):
    import torch

    result = run_experiment({**tiny_config, "checkpoint": "keep"}, out=tmp_path)
    files = sorted(result.run_dir.iterdir())
    strategy = torch.load(result.run_dir / "checkpoint.pt", weights_only=False)["strategy"]
    assert sorted(result.run_dir.iterdir()) == files  # no empty events file from unpickling
    logger = next(lg for lg in strategy.evaluator.loggers if type(lg).__name__.endswith("Logger"))
    logger.writer.add_scalar("probe", 1.0, 0)  # opened when used, in the run's directory
    logger.writer.flush()
    assert len(sorted(result.run_dir.iterdir())) == len(files) + 1
