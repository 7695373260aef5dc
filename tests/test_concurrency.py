"""One writer per run directory, and signals: SIGTERM like Ctrl-C, sweeps that own their workers.

These start real ``clstm`` processes (each pays the ~5 s import of torch and Avalanche), so they
take about a minute together; they run in the default suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clstm import cli
from clstm.run.rundir import is_locked, recorded_status

CLSTM = [sys.executable, "-m", "clstm.cli"]


# Waits are generous: on a loaded machine (other jobs on the cores) a tiny run's first experience
# took over 60 s, and with twice as many compute jobs as cores the first checkpoint did not come
# within 300 s; a long wait costs nothing when the condition comes sooner.
def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def long_config(tmp_path, tiny_config) -> Path:
    """A tiny experiment that trains for a few seconds per experience, to be stopped midway."""
    tiny_config["train"]["epochs"] = 400
    tiny_config["checkpoint"] = "keep"
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    return path


@pytest.fixture
def longer_config(long_config) -> Path:
    """Runs of tens of seconds: a sweep is still running them when it is stopped."""
    data = yaml.safe_load(long_config.read_text())
    data["train"]["epochs"] = 3000
    long_config.write_text(yaml.safe_dump(data))
    return long_config


def test_second_process_is_refused_and_sigterm_interrupts_resumably(long_config, tmp_path, capsys):
    out = tmp_path / "out"
    run = out / "tiny" / "naive" / "seed0"
    lock = run.parent / ".seed0.lock"
    first = subprocess.Popen(
        # one thread: 2-thread torch is several times slower when other jobs share the cores
        [*CLSTM, "run", str(long_config), "--out", str(out), "--quiet", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: (run / "meta.json").exists(), 900, "the first run to start")
        assert lock.read_text() == str(first.pid)
        config_before = (run / "config.yaml").read_bytes()
        # The second writer, started while the first trains: refused at once, nothing touched.
        code = cli.main(["run", str(long_config), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err
        assert f"is being written by another clstm process (pid {first.pid})" in err
        code = cli.main(["run", str(long_config), "--out", str(out), "--overwrite", "--quiet"])
        assert code == 2 and "being written by another clstm process" in capsys.readouterr().err
        # The first run keeps writing (events, meta.json timings); the refused ones wrote nothing:
        assert (run / "config.yaml").read_bytes() == config_before
        assert all(f".{first.pid}." in p.name for p in run.glob("events.out.tfevents.*"))
        assert lock.read_text() == str(first.pid)
        # SIGTERM (a scheduler's pre-emption) is handled like Ctrl-C.
        wait_for(lambda: (run / "checkpoint.pt").exists(), 900, "a checkpoint")
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 1, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    metrics, meta = read(run / "metrics.json"), read(run / "meta.json")
    assert metrics["status"] == meta["status"] == "interrupted"
    assert metrics["error"] == "interrupted by SIGTERM"
    assert len(list(run.glob("events.*"))) == 1  # one writer's TensorBoard file
    # --resume continues it (shortened: the config check is what matters, so keep the config).
    trained = metrics["experiences_trained"]
    assert cli.main(["run", str(long_config), "--out", str(out), "--resume", "--quiet"]) == 0
    resumed = read(run / "metrics.json")
    assert resumed["status"] == "completed" and resumed["experiences_trained"] == 3
    assert read(run / "meta.json")["timings"][:trained] == meta["timings"]


def test_sweeps_of_other_runs_share_the_experiment_folder(longer_config, tmp_path, capsys):
    """One cluster job per run and one --out: a sweep runs beside another one's run and
    sweep.json keeps both sweeps' rows; a sweep of a run that another is running is refused."""
    out = tmp_path / "out"
    run = out / "tiny" / "naive" / "seed0"
    first = subprocess.Popen(
        [*CLSTM, "run", str(longer_config), "--out", str(out), "--seeds", "0", "--quiet",
         "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: (run / "meta.json").exists(), 900, "the first sweep's run to start")
        args = ["run", str(longer_config), "--out", str(out), "--quiet", "--threads", "1"]
        assert cli.main([*args, "--seeds", "0-1"]) == 2  # seed 0 is being run: refused
        err = capsys.readouterr().err.strip()
        assert "\n" not in err
        assert f"seed0 is being written by another clstm process (pid {first.pid})" in err
        assert not (run.parent / "seed1").exists()
        # another run (a shorter one: it ends while the first still trains) in the same folder
        assert cli.main([*args, "--seeds", "0", "--set", "train.epochs=20"]) == 0
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=90)
    finally:
        first.kill()
    assert first.returncode == 1 and "interrupted by SIGTERM" in stderr, stderr
    rows = read(out / "tiny" / "sweep.json")["runs"]
    assert [(r["run_name"], r["seed"], r["status"]) for r in rows] == [
        ("naive", 0, "interrupted"), ("naive_train.epochs=20", 0, "completed"),
    ]  # fmt: skip
    assert f":{first.pid}:" in rows[0]["sweep"] and f":{os.getpid()}:" in rows[1]["sweep"]
    assert [p.name for p in (out / "tiny").glob(".sweep*")] == [".sweep.lock"]


def _start_sweep(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLSTM, "run", str(config), "--out", str(out), "--seeds", "0-3", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _running_workers(out: Path) -> list[int]:
    metas = [read(p) for p in (out / "tiny" / "naive").glob("seed*/meta.json")]
    pids = [m["pid"] for m in metas if m.get("status") == "running"]
    return pids if len(pids) == 2 else []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])  # fmt: skip
def test_a_sweep_owns_its_workers(sig, longer_config, tmp_path):
    out = tmp_path / "out"
    sweep = _start_sweep(longer_config, out)
    try:
        workers = wait_for(lambda: _running_workers(out), 900, "two running workers")
        sweep.send_signal(sig)  # to the main process only, as `kill` or a scheduler does
        stdout, stderr = sweep.communicate(timeout=90)
    finally:
        sweep.kill()
    # Every worker stops by itself promptly, also when the main process was SIGKILLed.
    wait_for(lambda: not any(alive(pid) for pid in workers), 30, "the workers to exit")
    runs = sorted((out / "tiny" / "naive").glob("seed*/meta.json"))
    statuses = {p.parent.name: read(p)["status"] for p in runs}
    assert sorted(statuses.values()) == ["interrupted", "interrupted"], statuses
    rows = {r["seed"]: r for r in read(out / "tiny" / "sweep.json")["runs"]}
    if sig == signal.SIGKILL:  # nobody was left to update sweep.json; each run says it all
        assert sweep.returncode == -signal.SIGKILL
    else:
        cause = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
        assert sweep.returncode == 1
        assert f"sweep interrupted by {cause}" in stderr and "Traceback" not in stderr, stderr
        assert [rows[s]["status"] for s in range(4)] == ["interrupted"] * 4
        for p in runs:
            assert read(p.parent / "metrics.json")["error"] == f"interrupted by {cause}"
    if sig == signal.SIGKILL:
        for p in runs:
            error = read(p.parent / "metrics.json")["error"]
            assert error == "interrupted by the end of the sweep's main process"
    # Nothing holds the run directories any more: a --resume can take them over.
    assert not any(is_locked(p.parent) for p in runs)
    assert all(recorded_status(p.parent) == "interrupted" for p in runs)
