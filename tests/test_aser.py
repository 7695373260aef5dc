"""ASER (strategy ``aser``): the KNN Shapley values against their definition (every coalition
enumerated) and a 2-point example by hand, the memory's size and update, and runs (determinism,
resume) on a variable-length class-incremental stream."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin
from test_herding import assert_deterministic_and_resumes, class_stream

from clstm import run_experiment
from clstm.plugins.aser import ASERPlugin, knn_shapley

CONFIG = {
    "name": "aser", "seed": 0, "device": "cpu", "model": {"hidden_size": 8},
    "strategy": {"name": "aser", "mem_size": 20},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def shapley_by_definition(distances, labels, y, k):
    """Each candidate's Shapley value in u(S) = (1/K) #{of the K nearest in S with label y},
    from every coalition."""
    n = len(distances)

    def utility(members):
        nearest = sorted(members, key=lambda j: (distances[j], j))[:k]
        return sum(labels[j] == y for j in nearest) / k

    values = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                total += weight * (utility([*s, i]) - utility(list(s)))
        values.append(total)
    return values


def test_two_candidates_by_hand():
    # K = 1: a (near, the evaluation's label) decides alone; b (far, another label) adds nothing
    cand = torch.tensor([[0.1], [2.0]])
    values = knn_shapley(torch.tensor([[0.0]]), torch.tensor([1]), cand, torch.tensor([1, 0]), 1)
    torch.testing.assert_close(values, torch.tensor([[1.0, 0.0]]))


@pytest.mark.parametrize(("n", "k"), [(3, 1), (5, 3), (6, 2), (4, 5)])
def test_knn_shapley_is_the_shapley_value(n, k):
    rng = np.random.default_rng(n * 10 + k)
    cand = torch.tensor(rng.normal(size=(n, 2)))
    evaluation = torch.tensor(rng.normal(size=(3, 2)))
    cand_y, eval_y = torch.tensor(rng.integers(0, 2, n)), torch.tensor([0, 1, 1])
    values = knn_shapley(evaluation, eval_y, cand, cand_y, k)
    for e in range(3):
        distances = torch.linalg.norm(cand - evaluation[e], dim=1).tolist()
        expected = shapley_by_definition(distances, cand_y.tolist(), int(eval_y[e]), k)
        np.testing.assert_allclose(values[e].numpy(), expected, atol=1e-12)


def test_the_memory_holds_mem_size_and_takes_in_new_classes(tmp_path):
    seen = []

    class Probe(SupervisedPlugin):
        def before_eval(self, strategy, **kwargs):  # after each experience's update
            plugin = next(p for p in strategy.plugins if isinstance(p, ASERPlugin))
            if plugin.x is not None:
                seen.append((len(plugin.x), len(plugin.y), sorted(set(plugin.y.tolist()))))

    result = run_experiment(CONFIG, benchmark=class_stream(), out=tmp_path, plugins=[Probe()])
    assert result.status == "completed", result.error
    assert [(a, b) for a, b, _ in seen] == [(20, 20)] * 3  # exactly mem_size, one tensor
    assert seen[0][2] == [0, 1] and {2, 3} & set(seen[1][2]) and {4, 5} & set(seen[2][2])


def test_aser_is_deterministic_and_resumes_bitwise(tmp_path):
    assert_deterministic_and_resumes(tmp_path, CONFIG)


@pytest.mark.slow
def test_the_cost_benchmark_runs_in_quick_mode():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "bench_methods.py"
    done = subprocess.run([sys.executable, str(script), "--quick", "--repeats", "1"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for method in ("herding", "derpp", "dt2w", "fasticarl", "clops", "aser"):
        assert f"| `{method}` |" in done.stdout
    assert "| 128 |" in done.stdout  # soft-DTW against the LSTM step
