"""Herding exemplars (strategy ``herding``): iCaRL's selection order against a direct computation,
the memory's size and iCaRL's reduction, a class-incremental run on variable-length sequences,
determinism and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin

from clstm import run_experiment
from clstm.plugins.herding import herding_order


def direct_herding(features: np.ndarray, k: int) -> list[int]:
    """iCaRL's Algorithm 4 written out: try every remaining row, keep the one whose addition
    brings the exemplars' mean nearest the class mean."""
    mu = features.mean(axis=0)
    chosen: list[int] = []
    for i in range(1, k + 1):
        best, best_d = None, np.inf
        for j in range(len(features)):
            if j in chosen:
                continue
            d = np.linalg.norm(mu - (features[chosen].sum(axis=0) + features[j]) / i)
            if d < best_d:
                best, best_d = j, d
        chosen.append(best)
    return chosen


@pytest.mark.parametrize(("n", "k"), [(12, 5), (9, 9), (30, 7)])
def test_herding_order_is_icarls(n, k):
    rng = np.random.default_rng(n)
    features = rng.normal(size=(n, 4))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    assert herding_order(torch.tensor(features), k).tolist() == direct_herding(features, k)


def test_the_first_exemplar_is_nearest_the_mean_and_k_is_capped():
    features = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.7, 0.7], [-1.0, 0.0]])
    order = herding_order(features, 10)
    assert order[0] == 2 and sorted(order.tolist()) == [0, 1, 2, 3]


def class_stream(scenario="class"):
    """Six classes in three experiences of two, variable-length sequences (3 to 14 steps, two
    channels) whose class shifts one channel."""
    from clstm.data.arrays import benchmark_from_arrays

    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n) % 6
        x = [rng.standard_normal((int(t), 2)) + [label / 2, 0] for t, label in
             zip(rng.integers(3, 15, n), y, strict=True)]  # fmt: skip
        return x, y

    train, test = split(180), split(60)
    if scenario == "class":
        return benchmark_from_arrays([train], [test], scenario="class", n_experiences=3)

    def part(d, e):  # experience e's two classes
        return [x for x, c in zip(*d, strict=True) if c // 2 == e], [c for c in d[1] if c // 2 == e]

    parts = [part(d, e) for d in (train, test) for e in range(3)]
    return benchmark_from_arrays(parts[:3], parts[3:], scenario=scenario)


CONFIG = {
    "name": "herding", "seed": 0, "device": "cpu", "model": {"hidden_size": 8},
    "strategy": {"name": "herding", "mem_size": 20},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def test_memory_holds_mem_size_with_equal_shares_and_shrinks_by_dropping_the_end(tmp_path):
    sizes, rows = [], []

    class Probe(SupervisedPlugin):
        def before_eval(self, strategy, **kwargs):  # after each experience's memory update
            policy = next(p for p in strategy.plugins if hasattr(p, "storage_policy"))
            groups = policy.storage_policy.buffer_groups
            if not groups:  # the evaluation before training
                return
            sizes.append({key: len(g.buffer) for key, g in groups.items()})
            rows.append({key: [g.buffer[i][0] for i in range(len(g.buffer))]
                         for key, g in groups.items()})  # fmt: skip

    result = run_experiment(CONFIG, benchmark=class_stream(), out=tmp_path, plugins=[Probe()])
    assert result.status == "completed", result.error
    assert [sum(s.values()) for s in sizes] == [20, 20, 20]  # exactly mem_size
    assert [len(s) for s in sizes] == [2, 4, 6]  # two classes per experience
    for s in sizes:
        assert max(s.values()) - min(s.values()) <= 1  # an equal share, to one sequence
    # iCaRL's reduction: a group's exemplars later are the first ones of its earlier exemplars
    for key, first in rows[0].items():
        for later in (rows[1][key], rows[2][key]):
            assert len(later) < len(first)
            for a, b in zip(later, first[: len(later)], strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0)


FIRED: list = []  # module-level: the checkpoint pickles the plugin, which must not fire again


class StopOnce(SupervisedPlugin):
    """Interrupts the third experience once, at its first iteration."""

    def after_training_iteration(self, strategy, **kwargs):
        if not FIRED and strategy.clock.train_exp_counter == 2:
            FIRED.append(True)
            raise KeyboardInterrupt


def assert_deterministic_and_resumes(tmp_path, config, extra_plugins=()):
    """Two runs of ``config`` on :func:`class_stream` give the same matrix, and so does one
    interrupted in its third experience and resumed; returns the first run."""
    a = run_experiment(config, benchmark=class_stream(), out=tmp_path / "a",
                       plugins=list(extra_plugins))  # fmt: skip
    b = run_experiment(config, benchmark=class_stream(), out=tmp_path / "b")
    np.testing.assert_array_equal(a.accuracy_matrix, b.accuracy_matrix)
    FIRED.clear()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, benchmark=class_stream(), out=tmp_path / "cut",
                       plugins=[StopOnce()])  # fmt: skip
    resumed = run_experiment(config, benchmark=class_stream(), out=tmp_path / "cut",
                             resume=True)  # fmt: skip
    np.testing.assert_array_equal(resumed.accuracy_matrix, a.accuracy_matrix)
    return a


def test_herding_is_deterministic_resumes_bitwise_and_differs_from_random_replay(tmp_path):
    a = assert_deterministic_and_resumes(tmp_path, CONFIG)
    replay = run_experiment({**CONFIG, "strategy": {"name": "replay", "mem_size": 20}},
                            benchmark=class_stream(), out=tmp_path / "replay")  # fmt: skip
    assert not np.array_equal(a.accuracy_matrix, replay.accuracy_matrix)  # other exemplars


@pytest.mark.parametrize("scenario", ["task", "domain"])
def test_herding_in_the_task_and_domain_scenarios(tmp_path, scenario):
    result = run_experiment(CONFIG, benchmark=class_stream(scenario), out=tmp_path)
    assert result.status == "completed", result.error
    assert np.isfinite(result.accuracy_matrix).all()
