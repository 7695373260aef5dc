"""DT2W (strategy ``dt2w``): soft-DTW against the sum over every warping path written out, its
gradients, the terms it adds per experience, and runs (determinism, resume) on a variable-length
class-incremental stream."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin
from test_herding import assert_deterministic_and_resumes, class_stream

from clstm import run_experiment
from clstm.plugins.dt2w import DT2WPlugin, soft_dtw


def warping_paths(n: int, m: int):
    """Every monotone path from (0, 0) to (n-1, m-1) with steps (1, 0), (0, 1), (1, 1)."""
    if (n, m) == (1, 1):
        yield [(0, 0)]
        return
    for di, dj in ((1, 0), (0, 1), (1, 1)):
        if n - di >= 1 and m - dj >= 1:
            for path in warping_paths(n - di, m - dj):
                yield [*path, (n - 1, m - 1)]


def brute_force(x: np.ndarray, y: np.ndarray, gamma: float) -> float:
    """DTW (gamma = 0: the cheapest path) or soft-DTW (-gamma log sum exp(-cost / gamma) over
    every path), from the paths themselves."""
    costs = [sum(((x[i] - y[j]) ** 2).sum() for i, j in path)
             for path in warping_paths(len(x), len(y))]  # fmt: skip
    if gamma == 0:
        return min(costs)
    low = min(costs)  # log-sum-exp, stably
    return low - gamma * math.log(sum(math.exp(-(c - low) / gamma) for c in costs))


def test_the_paths_are_all_of_them():
    assert sum(1 for _ in warping_paths(3, 3)) == 13  # the Delannoy number D(2, 2)
    assert sum(1 for _ in warping_paths(4, 5)) == 129  # D(3, 4)


@pytest.mark.parametrize("gamma", [0.0, 0.1, 1.0])
def test_soft_dtw_is_the_soft_minimum_over_every_warping_path(gamma):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 4, 2))
    x_lengths, y_lengths = [5, 3, 1], [4, 4, 2]  # ragged: each pair read up to its lengths
    got = soft_dtw(torch.tensor(x), torch.tensor(y), x_lengths, y_lengths, gamma=gamma)
    for b in range(3):
        expected = brute_force(x[b, : x_lengths[b]], y[b, : y_lengths[b]], gamma)
        assert got[b].item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_padding_after_a_sequence_does_not_change_its_distance():
    rng = np.random.default_rng(2)
    x, y = torch.tensor(rng.normal(size=(1, 4, 3))), torch.tensor(rng.normal(size=(1, 4, 3)))
    padded = [torch.cat([v, torch.full((1, 3, 3), 7.0, dtype=v.dtype)], dim=1) for v in (x, y)]
    assert soft_dtw(*padded, [4], [4]).item() == pytest.approx(soft_dtw(x, y).item(), rel=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 0.1, 0.0])
def test_soft_dtw_gradients(gamma):
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=(2, 4, 2)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(2, 3, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: soft_dtw(a, b, [4, 2], [3, 3], gamma), (x, y))


class Terms(SupervisedPlugin):
    """The DT2W terms of the first batch of each experience."""

    def __init__(self):
        super().__init__()
        self.first = {}

    def after_backward(self, strategy, **kwargs):
        plugin = next(p for p in strategy.plugins if isinstance(p, DT2WPlugin))
        terms = {k: float(v) for k, v in plugin.terms.items()}
        self.first.setdefault(strategy.clock.train_exp_counter, terms)
        plugin.terms, self.plugin = {}, plugin


CONFIG = {
    "name": "dt2w", "seed": 0, "device": "cpu", "model": {"hidden_size": 8},
    "strategy": {"name": "dt2w"}, "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def test_dt2w_adds_its_terms_from_the_second_experience(tmp_path):
    terms = Terms()
    result = run_experiment(CONFIG, benchmark=class_stream(), out=tmp_path, plugins=[terms])
    assert result.status == "completed", result.error
    assert terms.first[0] == {}  # nothing to distil while learning the first experience
    for k in (1, 2):
        assert set(terms.first[k]) == {"kd", "fmap", "proto_aug"}
        assert all(math.isfinite(v) for v in terms.first[k].values())
        assert terms.first[k]["proto_aug"] > 0
    plugin = terms.plugin
    assert sorted(plugin.prototypes) == list(range(6)) and plugin.radius > 0


def test_dt2w_is_deterministic_and_resumes_bitwise(tmp_path):
    assert_deterministic_and_resumes(tmp_path, CONFIG)


def test_dt2w_is_refused_with_task_heads(tmp_path):
    from clstm.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy 'dt2w' does not support the task scenario"):
        run_experiment(CONFIG, benchmark=class_stream("task"), out=tmp_path)


@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_the_hidden_states_are_those_of_the_training_forward(packing):
    """The hook reads the recurrent layer's output of the forward that made the outputs (packed:
    padded back, zeros after each sequence's end; padded: every step)."""
    from clstm.models.encoder import RecurrentEncoder
    from clstm.models.heads import SequenceClassifier
    from clstm.plugins.dt2w import _HiddenStates

    encoder = RecurrentEncoder(n_features=2, hidden_size=5, packing=packing)
    model = SequenceClassifier(encoder, n_classes=3)
    x = torch.cat([torch.randn(2, 6, 2), torch.ones(2, 6, 1)], dim=-1)
    x[1, 4:, -1] = 0  # the second sequence has 4 steps
    hook = _HiddenStates(model)
    model(x)
    states = hook.remove()
    full, _ = model.encoder.rnn(x[..., :-1])
    if packing == "packed":
        full[1, 4:] = 0
    torch.testing.assert_close(states, full)
    model(x)  # removed: no longer recorded
    assert hook.out is states
    assert list(itertools.chain(model.encoder.rnn._forward_hooks.values())) == []
