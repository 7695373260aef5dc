"""What was written or imported before the package was split into subpackages keeps working.

``tests/fixtures/checkpoints/`` holds runs stopped after the first of three experiences by clstm at
commit fc81932, before the split (``tests/fixtures/make_checkpoints.py``): their checkpoints
pickle every class under its old module path. Resumed with today's code, each must end with the
matrix the same run gives uninterrupted.
"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import clstm
from clstm.run.provenance import cpu_model
from clstm.run.runner import run_experiment

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checkpoints" / "runs"
RUNS = sorted(p.relative_to(FIXTURES) for p in FIXTURES.glob("*/*/seed0"))
MATRICES = ("accuracy_matrix", "initial_accuracy", "error_matrix_mse", "error_matrix_mae")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_there_is_a_fixture_per_kind_of_model_and_target():
    assert len(RUNS) == 4


@pytest.mark.parametrize("run", RUNS, ids=[r.parts[0] for r in RUNS])
def test_a_checkpoint_written_before_the_split_resumes_to_the_uninterrupted_numbers(run, tmp_path):
    fixture = FIXTURES / run
    with zipfile.ZipFile(fixture / "checkpoint.pt") as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"clstm.logging" in pickled  # classes under a path that no longer exists as a file
    assert not (Path(clstm.__file__).parent / "logging.py").exists()
    before = _snapshot(FIXTURES)
    out = tmp_path / "out"
    shutil.copytree(FIXTURES / run.parts[0], out / run.parts[0])
    run_dir = out / run
    assert json.loads((run_dir / "metrics.json").read_text())["experiences_trained"] == 1

    resumed = run_experiment(run_dir / "config.yaml", out=out, resume=True, threads=1)

    assert resumed.status == "completed" and resumed.run_dir == run_dir
    meta = json.loads((run_dir / "meta.json").read_text())
    assert len(meta["resumed"]) == 1 and len(meta["timings"]) == 3
    assert _snapshot(FIXTURES) == before  # nothing written where the checkpoint was made
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2  # the resumed part logged here
    expected = json.loads((fixture / "expected.json").read_text())
    fresh = run_experiment(run_dir / "config.yaml", out=tmp_path / "fresh", threads=1).metrics
    compared = [(k, resumed.metrics[k], expected[k], fresh[k])
                for k in MATRICES if expected.get(k) is not None]  # fmt: skip
    if "validation" in expected:  # the validation stream's matrix, resumed too
        compared.append(("validation", *(m["validation"]["accuracy_matrix"]
                                         for m in (resumed.metrics, expected, fresh))))  # fmt: skip
    assert compared
    for key, got, want, uninterrupted in compared:
        got, want = np.array(got, dtype=float), np.array(want, dtype=float)
        if expected["cpu"] == cpu_model():  # the machine that wrote the fixture: to the bit
            np.testing.assert_array_equal(got, want, err_msg=key)
            np.testing.assert_array_equal(got, np.array(uninterrupted, dtype=float), err_msg=key)
        else:  # another CPU model rounds differently (docs/runs.md, Determinism): close only
            np.testing.assert_allclose(got, want, atol=0.05, err_msg=key)


@pytest.mark.parametrize("old", sorted(clstm.MOVED))
def test_a_module_imported_by_its_old_path_is_the_new_one_with_a_warning(old):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {clstm.MOVED[old]}"):
        module = importlib.import_module(old)
    new = importlib.import_module(clstm.MOVED[old])
    public = [n for n in dir(new) if not n.startswith("__")]
    assert public and all(getattr(module, n) is getattr(new, n) for n in public)


def test_the_readme_s_own_old_import_still_works():
    """The README before the split told users ``from clstm.lean import LeanIteration``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from clstm.lean import LeanIteration
    from clstm.strategies.lean import LeanIteration as moved

    assert LeanIteration is moved


ROOT = Path(__file__).resolve().parent.parent
COPY_STUDIES = ("ehret2021_permuted_copy", "ehret2021_permuted_copy_ewc",
                "ehret2021_permuted_copy_si", "ehret2021_permuted_copy_coresets",
                "ehret2021_permuted_copy_replay", "ehret2021_permuted_copy_joint",
                "ehret2021_permuted_copy_hnet")  # fmt: skip


def test_the_committed_copy_task_report_regenerates_from_its_archive_byte_for_byte(tmp_path):
    """results/reference/copy/ and the Copy Task tables of results/REFERENCE.md, made by
    experiments/reference.sh from the archived runs, come out the same from today's code."""
    from clstm.report import write_report

    archive = ROOT / "results" / "reference" / "runs"
    report = write_report(
        [archive / study for study in COPY_STUDIES], out=tmp_path, with_figures=False,
        published=ROOT / "experiments" / "published" / "values.yaml",
    )  # fmt: skip
    committed = ROOT / "results" / "reference" / "copy"
    for name in ("report.tex", "report.csv"):
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name
    reference = (ROOT / "results" / "REFERENCE.md").read_text()
    tables = report.markdown_path.read_text().splitlines()
    assert len(tables) > 50 and [line for line in tables if line not in reference] == []
