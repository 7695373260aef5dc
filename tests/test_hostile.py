"""Hostile inputs and faults: each ends in one clear line, the right exit status, nothing lost.

Every case of ``CASES`` runs ``clstm`` in-process on files it writes into its own folder and
checks: the exit status (2 usage error, 1 fault), a fragment of the one-line message on stderr,
and that nothing was written or changed on disk (a snapshot of the folder before and after).
Cases that need more than that (runs to resume, reports to read) follow as their own tests.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from clstm import cli
from clstm.errors import ConfigError, DataError, OutputError, RunExistsError
from clstm.run.runner import run_experiment

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below ``root`` with its bytes (None for folders): 'nothing changed' checks."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = cli.main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def npz_file(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "X_train": rng.standard_normal((20, 6, 2)),
        "y_train": np.arange(20) % 2,
        "X_test": rng.standard_normal((10, 6, 2)),
        "y_test": np.arange(10) % 2,
    }
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def npz_config(tiny: dict, files: list[str]) -> dict:
    return {**tiny, "benchmark": {"name": "npz", "files": files, "scenario": "domain"}}


@dataclass
class Case:
    """One hostile input: how to make it, what the CLI must answer."""

    id: str
    make: Callable[[Path, dict], list[str]]  # (folder, tiny config) -> clstm arguments
    status: int
    message: str


def _cfg(tmp: Path, tiny: dict, **top) -> str:
    return str(write_yaml(tmp / "c.yaml", {**tiny, **top}))


def _out(tmp: Path) -> list[str]:
    return ["--out", str(tmp / "out")]


def _bomb(tmp: Path, tiny: dict) -> list[str]:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        levels.append(
            f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]"
        )
    text = yaml.safe_dump(tiny) + "\n".join(levels) + "\n"
    (tmp / "c.yaml").write_text(text)
    return ["run", str(tmp / "c.yaml"), *_out(tmp)]


def _duplicate_keys(tmp: Path, tiny: dict) -> list[str]:
    text = yaml.safe_dump(tiny) + "train:\n  epochs: 1\n"
    (tmp / "c.yaml").write_text(text)
    return ["run", str(tmp / "c.yaml"), *_out(tmp)]


def _not_utf8(tmp: Path, tiny: dict) -> list[str]:
    (tmp / "c.yaml").write_bytes(yaml.safe_dump(tiny).encode() + b"# caf\xe9\n")
    return ["run", str(tmp / "c.yaml"), *_out(tmp)]


def _npz(tmp: Path, tiny: dict, **arrays) -> list[str]:
    npz_file(tmp / "d.npz", **arrays)
    return ["run", str(write_yaml(tmp / "c.yaml", npz_config(tiny, [str(tmp / "d.npz")]))),
            *_out(tmp)]  # fmt: skip


def _npz_bytes(tmp: Path, tiny: dict, data: bytes) -> list[str]:
    (tmp / "d.npz").write_bytes(data)
    return ["run", str(write_yaml(tmp / "c.yaml", npz_config(tiny, [str(tmp / "d.npz")]))),
            *_out(tmp)]  # fmt: skip


def _truncated_npz(tmp: Path, tiny: dict) -> list[str]:
    whole = npz_file(tmp / "whole.npz").read_bytes()
    (tmp / "whole.npz").unlink()
    return _npz_bytes(tmp, tiny, whole[: len(whole) // 2])


def _existing_file(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("not a folder")
    return tmp / name


def _run(tmp, tiny, *extra):
    return ["run", _cfg(tmp, tiny), *_out(tmp), *extra]


CASES = [
    Case("seed-beyond-32-bits", lambda t, c: _run(t, c, "--seed", "4294967296"), 2,
         "seed: 4294967296 is out of range; it must be <= 4294967295"),
    Case("negative-seed", lambda t, c: _run(t, c, "--seed", "-1"), 2, "--seed must be >= 0"),
    Case("huge-hidden-size", lambda t, c: _run(t, c, "--set", "model.hidden_size=100000000"), 2,
         "parameters"),
    Case("huge-feature-count", lambda t, c: _run(t, c, "--set", "benchmark.n_features=60000"), 2,
         "more than the"),
    Case("seed-range-too-large", lambda t, c: _run(t, c, "--seeds", "0-300000000"), 2,
         "has 300,000,001 seeds"),
    Case("seeds-beyond-32-bits", lambda t, c: _run(t, c, "--seeds", "4294967296"), 2,
         "expected integers from 0 to 4294967295"),
    Case("grid-too-large", lambda t, c: _run(t, c, "--seeds", "0-9999", "--grid",
                                             "train.lr=0.1,0.2"), 2, "--allow-large-sweep"),
    Case("grid-seed", lambda t, c: _run(t, c, "--grid", "seed=1,2"), 2,
         "grid key 'seed' is not allowed: sweep seeds with --seeds"),
    Case("grid-name", lambda t, c: _run(t, c, "--grid", "name=a,b"), 2, "grid key 'name'"),
    Case("grid-duplicate-values", lambda t, c: _run(t, c, "--grid", "train.lr=0.1,0.1"), 2,
         "value 0.1 is listed twice"),
    Case("grid-bad-yaml", lambda t, c: _run(t, c, "--grid", "train.lr=[1,"), 2, "--grid train.lr"),
    Case("sweep-section-seed-key",
         lambda t, c: ["run", _cfg(t, c, sweep={"grid": {"seed": [1, 2]}}), *_out(t)], 2,
         "grid key 'seed'"),
    Case("duplicate-yaml-keys", _duplicate_keys, 2, "duplicate key 'train'"),
    Case("not-utf8", _not_utf8, 2, "not UTF-8 text"),
    Case("alias-bomb", _bomb, 2, "expands to"),
    Case("empty-out", lambda t, c: ["run", _cfg(t, c), "--out", ""], 2, "--out is empty"),
    Case("out-is-a-file", lambda t, c: ["run", _cfg(t, c), "--out", str(_existing_file(t, "f"))],
         2, "is a file"),
    Case("out-below-a-file",
         lambda t, c: ["run", _cfg(t, c), "--out", str(_existing_file(t, "f") / "sub")], 2,
         "is a file, not a folder"),
    Case("overwrite-and-resume", lambda t, c: _run(t, c, "--overwrite", "--resume"), 2,
         "give either --overwrite or --resume"),
    Case("seed-and-seeds", lambda t, c: _run(t, c, "--seed", "1", "--seeds", "0-1"), 2,
         "give either --seed"),
    Case("name-in-a-sweep", lambda t, c: _run(t, c, "--name", "x", "--seeds", "0-1"), 2,
         "--name names one run"),
    Case("npz-float-lengths",
         lambda t, c: _npz(t, c, lengths_train=np.full(20, 2.7), lengths_test=np.full(10, 3)), 2,
         "lengths_train must be a 1-D integer array"),
    Case("npz-string-lengths",
         lambda t, c: _npz(t, c, lengths_train=np.array(["3"] * 20)), 2,
         "lengths_train must be a 1-D integer array"),
    Case("npz-0d-lengths", lambda t, c: _npz(t, c, lengths_train=np.array(3)), 2,
         "shape ()"),
    Case("npz-zero-length", lambda t, c: _npz(t, c, lengths_train=np.zeros(20, dtype=int)), 2,
         "must lie in 1..6"),
    Case("npz-truncated", _truncated_npz, 2, "damaged or truncated .npz file"),
    Case("npz-text-file", lambda t, c: _npz_bytes(t, c, b"hello, not numpy\n"), 2,
         "not an .npz file (not a zip archive)"),
    Case("npz-beyond-float32",
         lambda t, c: _npz(t, c, X_train=np.full((20, 6, 2), 1e300)), 2, "beyond float32"),
    Case("npz-missing-file",
         lambda t, c: ["run", _cfg(t, npz_config(c, [str(t / "absent.npz")])), *_out(t)], 2,
         "file not found"),
    Case("python-benchmark-config",
         lambda t, c: ["run", _cfg(t, {**c, "benchmark": {"name": "python", "scenario": "task",
                                                          "fingerprint": "ab" * 32}}), *_out(t)],
         2, "benchmark 'python': this config records a run whose benchmark was passed from Python"),
    Case("report-no-runs", lambda t, c: ["report", str(t)], 2, "no runs (seed*/metrics.json)"),
    Case("report-missing-folder", lambda t, c: ["report", str(t / "absent")], 2,
         "results folder not found"),
    Case("typo-in-strategy", lambda t, c: _run(t, c, "--set", "strategy.name=repaly"), 2,
         "strategy.name"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_line_and_writes_nothing(case, tmp_path, tiny_config, capsys):
    args = case.make(tmp_path, tiny_config)
    before = snapshot(tmp_path)
    code, err = run_cli(args, capsys)
    assert code == case.status, err
    assert case.message in err
    assert err.startswith("clstm: error: ") and "\n" not in err and "Traceback" not in err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed


# --------------------------------------------------------------------------------------------
# faults and identity checks that need a finished run first
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory, make_tiny_config):
    """One completed tiny run (2 experiences), with its checkpoint kept, to copy into tests."""
    out = tmp_path_factory.mktemp("finished")
    config = make_tiny_config()
    config["benchmark"]["n_experiences"] = 2
    config["checkpoint"] = "keep"
    path = write_yaml(out / "tiny.yaml", config)
    assert cli.main(["run", str(path), "--out", str(out / "results"), "--quiet"]) == 0
    return out


def _copy(finished: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    shutil.copytree(finished, tmp_path / "w")
    work = tmp_path / "w"
    return work / "tiny.yaml", work / "results", work / "results" / "tiny" / "naive" / "seed0"


def test_fault_resume_with_changed_config_under_the_same_name(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    before = snapshot(tmp_path)
    code, err = run_cli(["run", str(config), "--out", str(out), "--resume", "--name", "naive",
                         "--set", "train.lr=0.5", "--set", "train.epochs=3"], capsys)  # fmt: skip
    assert code == 2 and "holds a run of a different config" in err
    assert "train.epochs 2 vs 3" in err and "train.lr 0.01 vs 0.5" in err
    assert snapshot(tmp_path) == before


def test_fault_resume_with_set_values_runs_a_new_run_not_the_stale_one(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    code, _ = run_cli(["run", str(config), "--out", str(out), "--resume", "--quiet",
                       "--set", "train.lr=0.5", "--set", "train.epochs=1"], capsys)  # fmt: skip
    assert code == 0
    new = out / "tiny" / "naive_train.lr=0.5_train.epochs=1" / "seed0"
    assert yaml.safe_load((new / "config.yaml").read_text())["train"]["lr"] == 0.5
    old = json.loads((run / "metrics.json").read_text())
    assert (
        json.loads((new / "metrics.json").read_text())["accuracy_matrix"] != old["accuracy_matrix"]
    )


def test_fault_truncated_checkpoint_on_resume_is_reported_and_kept(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    (run / "metrics.json").unlink()  # as if killed during the last experience
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 3])
    before = snapshot(tmp_path)
    code, err = run_cli(["run", str(config), "--out", str(out), "--resume"], capsys)
    assert code == 1 and "checkpoint.pt is damaged" in err and "left as it is" in err
    assert "\n" not in err and snapshot(tmp_path) == before


def test_fault_truncated_metrics_on_resume_is_reported_not_deleted(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    text = (run / "metrics.json").read_text()
    (run / "metrics.json").write_text(text[: len(text) // 2])
    before = snapshot(tmp_path)
    code, err = run_cli(["run", str(config), "--out", str(out), "--resume"], capsys)
    assert code == 1 and "cannot read" in err and "metrics.json" in err
    assert "left as it is" in err and snapshot(tmp_path) == before  # nothing deleted


def test_fault_report_skips_unreadable_runs_and_reports_the_rest(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    for seed in (1, 2):
        assert (
            cli.main(["run", str(config), "--out", str(out), "--seed", str(seed), "--quiet"]) == 0
        )
    capsys.readouterr()
    seed1 = run.parent / "seed1" / "metrics.json"
    seed1.write_text(seed1.read_text()[:50])  # truncated
    seed2 = run.parent / "seed2" / "metrics.json"
    m = json.loads(seed2.read_text())
    del m["seed"]
    seed2.write_text(json.dumps(m))  # no seed
    (out / "tiny" / "sweep.json").write_text("{broken")
    code = cli.main(["report", str(out), "--no-figures"])
    captured = capsys.readouterr()
    assert code == 0
    warning = captured.err.strip()
    assert "\n" not in warning and "skipped 3 unreadable run(s)" in warning
    assert "seed1" in warning and "seed2" in warning and "sweep.json" in warning
    table = (out / "report" / "report.md").read_text()
    assert "| naive | 1 |" in table


def test_fault_report_refuses_duplicate_seeds_naming_the_paths(finished, tmp_path, capsys):
    """Two different runs with one config and seed are never averaged; a copy of one run
    (identical metrics.json, e.g. an archive) counts once."""
    config, out, run = _copy(finished, tmp_path)
    for copy in ("a", "b"):
        shutil.copytree(out, tmp_path / copy)
    code, err = run_cli(["report", str(out), str(tmp_path / "a"), "--no-figures",
                         "--out", str(tmp_path / "same")], capsys)  # fmt: skip
    assert code == 0 and "| naive | 1 |" in (tmp_path / "same" / "report.md").read_text()
    other = tmp_path / "b" / "tiny" / "naive" / "seed0" / "metrics.json"
    other.write_text(json.dumps({**json.loads(other.read_text()), "wall_time_s": 1.0}))
    code, err = run_cli(["report", str(out), str(tmp_path / "a"), str(tmp_path / "b"),
                         "--no-figures", "--out", str(tmp_path / "rep")], capsys)  # fmt: skip
    assert code == 2 and "seed 0 of tiny/naive appears twice with the same config" in err
    assert str(tmp_path / "b") in err and not (tmp_path / "rep").exists()


def test_fault_report_splits_runs_whose_configs_differ(finished, tmp_path, capsys):
    """Folders named alike by hand (or by older clstm versions) are never averaged together,
    even when their accuracy matrices differ in shape (the figures are drawn per row)."""
    config, out, run = _copy(finished, tmp_path)
    other = tmp_path / "other"
    assert cli.main(["run", str(config), "--out", str(other), "--seed", "3", "--quiet",
                     "--set", "benchmark.n_experiences=3", "--name", "naive"]) == 0  # fmt: skip
    shutil.copytree(other / "tiny" / "naive" / "seed3", run.parent / "seed3")
    capsys.readouterr()
    assert cli.main(["report", str(out)]) == 0
    table = (out / "report" / "report.md").read_text()
    assert "| naive [benchmark.n_experiences=2] | 1 |" in table
    assert "| naive [benchmark.n_experiences=3] | 1 |" in table
    assert (out / "report" / "tiny_matrices.png").stat().st_size > 0


def test_fault_sweep_resume_with_changed_config_is_refused(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    data = yaml.safe_load(config.read_text())
    data["train"]["lr"] = 0.5  # the YAML edited, then the sweep resumed
    config.write_text(yaml.safe_dump(data))
    before = snapshot(tmp_path)
    code, err = run_cli(["run", str(config), "--out", str(out), "--seeds", "0", "--resume"], capsys)
    assert code == 2 and "holds a run of a different config (train.lr 0.01 vs 0.5" in err
    assert snapshot(tmp_path) == before


def test_fault_report_out_is_a_file(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    target = _existing_file(tmp_path, "report.txt")
    before = snapshot(tmp_path)
    code, err = run_cli(["report", str(out), "--out", str(target)], capsys)
    assert code == 2 and "is a file" in err and snapshot(tmp_path) == before


def test_fault_seeds_of_one_name_must_share_a_config(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    data = yaml.safe_load(config.read_text())
    data["train"]["epochs"] = 1  # the YAML edited between two seeds
    config.write_text(yaml.safe_dump(data))
    before = snapshot(tmp_path)
    code, err = run_cli(["run", str(config), "--out", str(out), "--seed", "1"], capsys)
    assert code == 2 and "holds seed0 of a different config (train.epochs 2 vs 1" in err
    assert "--name" in err and snapshot(tmp_path) == before


def test_fault_existing_run_names_cli_flags_and_python_arguments(finished, tmp_path, capsys):
    config, out, run = _copy(finished, tmp_path)
    code, err = run_cli(["run", str(config), "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err and "overwrite=True" not in err
    with pytest.raises(RunExistsError) as info:
        run_experiment(config, out=out)
    assert "overwrite=True" in str(info.value) and "--overwrite" not in str(info.value)


def test_fault_disk_full_ends_cleanly(tmp_path, tiny_config, monkeypatch, capsys):
    """ENOSPC while writing metrics.json: one line, exit 1, a final status, no temporary files."""
    import clstm.run.outcome as outcome  # the writer of metrics.json

    real = outcome.write_json_atomic

    def full(path, data):
        if Path(path).name == "metrics.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(outcome, "write_json_atomic", full)
    tiny_config["benchmark"]["n_experiences"] = 1
    code, err = run_cli(["run", _cfg(tmp_path, tiny_config), *_out(tmp_path), "--quiet"], capsys)
    assert code == 1 and "No space left on device" in err and "\n" not in err
    run = tmp_path / "out" / "tiny" / "naive" / "seed0"
    assert json.loads((run / "meta.json").read_text())["status"] == "failed"
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def test_fault_checkpoint_write_failure_leaves_no_temporary_file(
    tmp_path, tiny_config, monkeypatch
):
    import clstm.run.checkpoint as checkpoint

    def full(strategy, fname):
        Path(fname).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(fname))

    monkeypatch.setattr(checkpoint, "_save_checkpoint_fast", full)
    tiny_config["benchmark"]["n_experiences"] = 1
    with pytest.raises(Exception, match="No space left on device"):
        run_experiment(tiny_config, out=tmp_path)
    run = tmp_path / "tiny" / "naive" / "seed0"
    assert not list(run.glob(".*.tmp")) and checkpoint  # the checkpoint's temporary file is gone
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"


_UNWRITABLE_EVENTS = """
import shutil, sys
from pathlib import Path
from clstm.run.logging import RunTensorboardLogger, close_events
run = Path(sys.argv[1])
logger = RunTensorboardLogger(run)
logger.writer.add_scalar("a", 1.0, 0)
logger.writer.flush()
shutil.rmtree(run)
logger.writer.add_scalar("a", 2.0, 1)
try:
    close_events(logger.writer)
except FileNotFoundError:
    print("close raised")
"""  # the logger lives to interpreter exit, where Avalanche's weakref.finalize closes it again


def test_fault_unwritable_events_file_is_raised_once_without_tracebacks(tmp_path):
    """The run folder removed (or the disk full) under TensorBoard's writer: closing the events
    file raises the error, which clstm reports in one line; neither the writer thread nor the
    second close that Avalanche's logger makes at interpreter exit prints a traceback."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _UNWRITABLE_EVENTS, str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "close raised\n", done.stderr
    assert done.stderr == ""


def test_writer_thread_hook_passes_on_other_threads_errors(monkeypatch):
    import threading

    from clstm.run.logging import _leave_writer_thread_errors_to_the_writer

    seen = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    _leave_writer_thread_errors_to_the_writer()
    installed = threading.excepthook
    _leave_writer_thread_errors_to_the_writer()
    assert threading.excepthook is installed  # wraps once, not once per run

    def other() -> None:
        raise OSError("not the writer")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert [str(args.exc_value) for args in seen] == ["not the writer"]


# --------------------------------------------------------------------------------------------
# safe paths
# --------------------------------------------------------------------------------------------


def test_sweep_over_file_paths_writes_nothing_outside_out(tmp_path, tiny_config, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        npz_file(data / f"{name}.npz")
    work = tmp_path / "work"
    work.mkdir()
    config = write_yaml(work / "c.yaml", npz_config(tiny_config, [str(data / "a.npz")]))
    grid = f"benchmark.files=[../data/a.npz],[{data / 'b.npz'}]"
    outside_before = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts}
    import os

    cwd = os.getcwd()
    os.chdir(work)
    try:
        code = cli.main(["run", str(config), "--out", "out", "--grid", grid, "--quiet"])
    finally:
        os.chdir(cwd)
    assert code == 0, capsys.readouterr().err
    outside_after = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts}
    assert outside_after == outside_before  # nothing created outside --out
    runs = sorted(p.parent.parent.name for p in (work / "out").rglob("metrics.json"))
    assert len(runs) == 2 and all("/" not in r and not r.startswith(".") for r in runs)
    assert all(
        p.parent.parent.parent == work / "out" / "tiny"
        for p in (work / "out").rglob("metrics.json")
    )


def test_run_name_from_python_cannot_escape_out(tmp_path, tiny_config):
    tiny_config["benchmark"]["n_experiences"] = 1
    for name in ("../../x", "/abs/y", ".."):
        result = run_experiment(tiny_config, out=tmp_path / "out", run_name=name)
        assert result.run_dir.resolve().is_relative_to((tmp_path / "out" / "tiny").resolve())
        assert result.run_dir.parent.parent == tmp_path / "out" / "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --------------------------------------------------------------------------------------------
# Python-side inputs
# --------------------------------------------------------------------------------------------


def _arrays(n=24, t=5, f=2):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, t, f)), np.arange(n) % 2


def test_validation_given_as_text_is_refused():
    from clstm import benchmark_from_arrays

    with pytest.raises(
        DataError, match="validation must be a number in \\[0, 1\\) \\(e.g. 0.2\\), got '0.2'"
    ):
        benchmark_from_arrays([_arrays()], [_arrays()], validation="0.2")


def test_tensors_that_require_grad_are_accepted():
    from clstm import benchmark_from_arrays

    X, y = _arrays()
    x = torch.tensor(X, requires_grad=True)
    bench = benchmark_from_arrays([(x, torch.tensor(y))], [(X, y)])
    assert bench.n_features == 2


def test_python_benchmark_is_recorded_and_refused_by_the_cli(tmp_path, tiny_config, capsys):
    from clstm import benchmark_from_arrays

    bench = benchmark_from_arrays([_arrays(), _arrays(f=3)], [_arrays(), _arrays(f=3)],
                                  scenario="task", names=["walk", "talk"])  # fmt: skip
    result = run_experiment({**tiny_config, "name": "own"}, benchmark=bench, out=tmp_path)
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())["benchmark"]
    assert recorded["name"] == "python" and recorded["scenario"] == "task"
    assert recorded["experiences"] == ["walk", "talk"] and len(recorded["fingerprint"]) == 64
    code, err = run_cli(["run", str(result.run_dir / "config.yaml"), "--out", str(tmp_path / "x")],
                        capsys)  # fmt: skip
    assert code == 2 and "passed from Python" in err and not (tmp_path / "x").exists()
    other = benchmark_from_arrays([_arrays(n=30), _arrays(f=3)], [_arrays(), _arrays(f=3)],
                                  scenario="task", names=["walk", "talk"])  # fmt: skip
    with pytest.raises(ConfigError, match="holds a run of a different config"):
        run_experiment({**tiny_config, "name": "own"}, benchmark=other, out=tmp_path, resume=True)


@pytest.mark.filterwarnings("ignore:No loggers specified:UserWarning")
def test_accuracy_matrix_follows_a_stream_not_called_test():
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from clstm.data.sequences import classification_dataset, pad_sequences
    from clstm.models import RecurrentEncoder, SequenceClassifier
    from clstm.plugins import AccuracyMatrixMetric

    def data(seed):
        X, y = _arrays(n=16)
        x = pad_sequences(list(X + seed))
        return classification_dataset(x, torch.tensor(y))

    bench = benchmark_from_datasets(train=[data(0), data(1)], eval=[data(0), data(1)])
    model = SequenceClassifier(RecurrentEncoder(n_features=2, hidden_size=4), 2)
    matrix = AccuracyMatrixMetric()
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()),
                     train_mb_size=8, evaluator=EvaluationPlugin(matrix))  # fmt: skip
    with pytest.raises(ValueError, match="saw no evaluation of any stream"):
        matrix.result()
    for experience in bench.train_stream:
        strategy.train(experience)
        strategy.eval(bench.streams["eval"])
    initial, R = matrix.result()
    assert initial is None and R.shape == (2, 2) and not np.isnan(R).any()
    named = AccuracyMatrixMetric(stream="test")
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()),
                     train_mb_size=8, evaluator=EvaluationPlugin(named))  # fmt: skip
    strategy.eval(bench.streams["eval"])
    with pytest.raises(
        ValueError, match=r"stream 'test' outside training \(streams evaluated: eval\)"
    ):
        named.result()


def test_ray_with_more_gpus_per_run_than_the_cluster_has_is_refused(tmp_path, tiny_config):
    pytest.importorskip("ray")
    from clstm.run.sweep import run_sweep

    with pytest.raises(ConfigError, match=r"gpus_per_run 1: the Ray cluster has 0 GPU\(s\)"):
        run_sweep(tiny_config, backend="ray", gpus_per_run=1, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_output_error_is_an_os_error():  # callers catching OSError keep working
    assert issubclass(OutputError, OSError)
