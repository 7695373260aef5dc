"""Sweeps: seeds x grid, parallel workers, failure isolation, summary, determinism."""

import json
import os

import pytest
import yaml

from clstm import cli
from clstm.config import ConfigError, load_config
from clstm.run.grid import expand, parse_grid, parse_seeds
from clstm.run.sweep import run_sweep


def test_parse_seeds():
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,3,7") == (0, 3, 7)
    assert parse_seeds("1-2,5") == (1, 2, 5)
    assert parse_seeds(3) == (3,) and parse_seeds([2, 4]) == (2, 4)
    for bad, message in [("4-1", "goes backwards"), ("a", "not a seed"), ("1,1", "twice")]:
        with pytest.raises(ConfigError, match=message):
            parse_seeds(bad)


def test_parse_grid_reads_yaml_values_and_keeps_lists_whole():
    grid = parse_grid(["train.lr=0.01,1e-3", "benchmark.seq_len=[5, 9],12", "strategy.name=naive"])
    assert grid == {
        "train.lr": [0.01, "1e-3"],
        "benchmark.seq_len": [[5, 9], 12],
        "strategy.name": ["naive"],
    }
    with pytest.raises(ConfigError, match="--grid expects key=value1,value2"):
        parse_grid(["train.lr"])


def test_expansion_names_runs_by_strategy_and_swept_values(tiny_config):
    grid = {"strategy.name": ["naive", "replay"], "train.lr": [0.01, 0.001]}
    specs = expand(tiny_config, (0, 1), grid)
    assert len(specs) == 8
    names = sorted({s.run_name for s in specs})
    assert names == [f"{s}_train.lr={lr}" for s in ("naive", "replay") for lr in ("0.001", "0.01")]
    assert {s.seed for s in specs} == {0, 1}
    with pytest.raises(ConfigError, match="train.lr: -1.0 is out of range"):
        expand(tiny_config, (0,), {"train.lr": [0.01, -1]})  # refused before any run


def test_two_by_two_seed_sweep_with_two_workers_matches_sequential_runs(tmp_path, tiny_config):
    tiny_config["benchmark"]["n_experiences"] = 2
    grid = {"strategy.name": ["naive", "replay"]}
    parallel = run_sweep(tiny_config, seeds=(0, 1), grid=grid, out=tmp_path / "p", workers=2)
    serial = run_sweep(tiny_config, seeds=(0, 1), grid=grid, out=tmp_path / "s", workers=1)
    assert [r["status"] for r in parallel.runs] == ["completed"] * 4
    summary = json.loads(parallel.summary_path.read_text())
    assert summary["workers"] == 2 and len(summary["runs"]) == 4
    for strategy in ("naive", "replay"):
        for seed in (0, 1):
            a = tmp_path / "p" / "tiny" / strategy / f"seed{seed}" / "metrics.json"
            b = tmp_path / "s" / "tiny" / strategy / f"seed{seed}" / "metrics.json"
            ma, mb = json.loads(a.read_text()), json.loads(b.read_text())
            assert ma["accuracy_matrix"] == mb["accuracy_matrix"]  # same seed, same numbers
            assert ma["seed"] == seed and ma["strategy"] == strategy
    seeds = {r["seed"]: r["acc"] for r in serial.runs if r["run_name"] == "naive"}
    assert seeds[0] != seeds[1]  # seeds matter


def test_a_failing_run_does_not_sink_the_sweep(tmp_path, tiny_config, capsys):
    tiny_config["benchmark"].update(n_experiences=2, scenario="task")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {**tiny_config, "sweep": {"seeds": "0", "grid": {"strategy.name": ["der", "naive"]}}}
        )
    )
    code = cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--workers", "2"])
    assert code == 1  # something failed
    runs = {
        r["run_name"]: r
        for r in json.loads((tmp_path / "out" / "tiny" / "sweep.json").read_text())["runs"]
    }
    assert runs["naive"]["status"] == "completed"
    assert (
        runs["der"]["status"] == "failed"
        and "does not support the task scenario" in runs["der"]["error"]
    )
    out = capsys.readouterr().out
    assert "2 runs: 1 completed, 1 not completed" in out


def test_existing_runs_are_refused_before_the_sweep_starts(tmp_path, tiny_config, capsys):
    tiny_config["benchmark"]["n_experiences"] = 1
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config))
    args = ["run", str(path), "--out", str(tmp_path / "o"), "--seeds", "0-1", "--quiet"]
    assert cli.main(args) == 0
    assert cli.main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli.main([*args, "--overwrite"]) == 0
    assert cli.main(["run", str(path), "--seed", "1", "--seeds", "0-1"]) == 2


def test_a_config_with_a_sweep_section_is_not_a_single_run(tmp_path, tiny_config):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**tiny_config, "sweep": {"seeds": "0-1"}}))
    with pytest.raises(ConfigError, match="has a sweep section"):
        load_config(path)


def test_worker_benchmark_script_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "experiments" / "bench_workers.py"
    out = subprocess.run(
        [sys.executable, str(script), "--quick", "--repeats", "1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = ["| quickstart | 1 x 1 |", "| Copy Task | 1 x 1 |"]
    if (os.cpu_count() or 1) >= 2:  # every workers x threads split of the cores
        rows += ["| quickstart | 2 x 1 |", "| Copy Task | 1 x 2 |"]
    for row in rows:
        assert row in out.stdout
    assert "- Copy Task: fastest" in out.stdout


def test_ray_backend_gives_the_local_backends_numbers(tmp_path, tiny_config):
    pytest.importorskip("ray")  # the dev extra installs it; CI runs this
    tiny_config["benchmark"]["n_experiences"] = 2
    grid = {"strategy.name": ["naive", "ewc"]}
    on_ray = run_sweep(tiny_config, seeds=(0, 1), grid=grid, backend="ray", out=tmp_path / "r")
    local = run_sweep(tiny_config, seeds=(0, 1), grid=grid, out=tmp_path / "local", workers=2)
    assert [r["status"] for r in on_ray.runs + local.runs] == ["completed"] * 8
    for strategy in ("naive", "ewc"):
        for seed in (0, 1):
            rel = f"tiny/{strategy}/seed{seed}/metrics.json"
            ray_m = json.loads((tmp_path / "r" / rel).read_text())
            local_m = json.loads((tmp_path / "local" / rel).read_text())
            for key in ("accuracy_matrix", "initial_accuracy", "acc", "bwt", "forgetting"):
                assert ray_m[key] == local_m[key]


def test_missing_ray_is_a_one_line_hint(tmp_path, tiny_config, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"needs the ray package: pip install 'clstm\[ray\]'"):
        run_sweep(tiny_config, out=tmp_path, backend="ray")


def test_sweep_json_keeps_the_real_wall_time_of_runs_it_skips(tmp_path, tiny_config):
    tiny_config["benchmark"]["n_experiences"] = 1
    first = run_sweep(tiny_config, seeds=(0,), out=tmp_path)
    again = run_sweep(tiny_config, seeds=(0,), out=tmp_path, resume=True)
    measured = json.loads((tmp_path / "tiny" / "naive" / "seed0" / "metrics.json").read_text())
    assert first.runs[0]["wall_time_s"] == again.runs[0]["wall_time_s"] == measured["wall_time_s"]
    assert measured["wall_time_s"] > 0  # the run's own time, not the skip's


def test_sweeps_of_different_runs_share_one_experiment_folder(tmp_path, tiny_config):
    """A cluster job per seed, one --out: sweep.json keeps every sweep's rows; a run that
    another living sweep still has to do is refused; a killed sweep's open rows say so."""
    from clstm.errors import RunLockedError
    from clstm.run.rundir import RunLock

    tiny_config["benchmark"]["n_experiences"] = 2
    out = tmp_path / "out"
    folder = out / "tiny"
    first = run_sweep(tiny_config, seeds=(0,), out=out)
    summary = json.loads(first.summary_path.read_text())
    (row0,) = summary["runs"]
    assert row0["status"] == "completed" and row0["sweep"].count(":") == 2
    # two other sweeps listed runs: one was killed (its owner lock is free, its file left
    # behind), one is running (this test holds its owner lock) and has seed 7 still to do
    living = RunLock(folder / "sweep-abcabcabcabc").acquire()
    (folder / ".sweep-deaddeaddead.lock").write_text("123")
    summary["runs"] += [
        {"run_name": "naive", "seed": 5, "status": "pending", "sweep": "n1:123:deaddeaddead"},
        {"run_name": "naive", "seed": 7, "status": "pending", "sweep": "n2:456:abcabcabcabc"},
    ]
    first.summary_path.write_text(json.dumps(summary))
    before = first.summary_path.read_text()
    try:
        with pytest.raises(RunLockedError) as refused:
            run_sweep(tiny_config, seeds=(1, 7), out=out)
        assert str(refused.value) == (
            f"{folder / 'naive' / 'seed7'} is still to be run by another clstm sweep (pid 456 on "
            "n2); leave it out of this sweep, wait for that one to finish, or write elsewhere "
            "with a different out"
        )
        assert first.summary_path.read_text() == before  # refused before writing anything
        assert not (folder / "naive" / "seed1").exists()
        second = run_sweep(tiny_config, seeds=(1,), out=out)
        assert [r["status"] for r in second.runs] == ["completed"]
        rows = {r["seed"]: r for r in json.loads(first.summary_path.read_text())["runs"]}
        assert list(rows) == [0, 5, 7, 1]  # earlier rows keep their places
        assert rows[0] == row0  # the first sweep's row, untouched
        assert rows[5]["status"] == "interrupted"
        assert rows[5]["error"] == "its sweep ended before the run finished"
        assert rows[7]["status"] == "pending"  # its sweep lives: left to it
        assert rows[1]["status"] == "completed" and rows[1]["sweep"] != row0["sweep"]
        assert not (folder / ".sweep-deaddeaddead.lock").exists()  # the killed one's lock file
    finally:
        living.release()
    # no owner lock is left behind by a sweep that ended
    assert sorted(p.name for p in folder.glob(".sweep*")) == [".sweep-abcabcabcabc.lock",
                                                              ".sweep.lock"]  # fmt: skip
