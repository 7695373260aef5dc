"""The README's quickstart, end to end through the public API: it must show forgetting clearly."""

from pathlib import Path

import numpy as np

import clstm

QUICKSTART = Path(__file__).resolve().parent.parent / "experiments" / "quickstart.yaml"


def test_quickstart_learns_each_experience_then_forgets_it(tmp_path):
    result = clstm.run_experiment(QUICKSTART, out=tmp_path)
    R = result.accuracy_matrix
    assert result.status == "completed" and R.shape == (3, 3)
    chance = 1 / 4
    assert np.all(np.diag(R) > 0.7)  # each rule is learnt ...
    assert np.all(R[-1, :-1] < chance + 0.2)  # ... and fine-tuning on the next one erases it
    assert result.metrics["forgetting"] > 0.4
    assert result.metrics["bwt"] < -0.4
    assert abs(result.metrics["fwt"]) < 0.1  # rules are unrelated: no forward transfer
