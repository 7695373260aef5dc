"""Stateful (Keras-style) training over consecutive windows of long series."""

import numpy as np
import pytest
import torch

from clstm.config import ConfigError
from clstm.data.sampling import ConsecutiveWindowsBatchSampler
from clstm.run.runner import run_experiment

RECALL = {
    "name": "cued_recall", "n_experiences": 2, "n_series_train": 96, "n_series_test": 64,
    "n_windows": 4, "window": 6, "n_classes": 4,
}  # fmt: skip


def test_row_b_of_each_batch_continues_row_b_of_the_previous_one():
    sampler = ConsecutiveWindowsBatchSampler(
        10 * 3, 3, 4, generator=torch.Generator().manual_seed(0)
    )
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 * 3  # 3 groups of series (4, 4, 2) x 3 windows
    for group in range(3):
        first, *rest = batches[group * 3 : group * 3 + 3]
        assert all(i % 3 == 0 for i in first)  # a group starts with first windows
        for k, batch in enumerate(rest, 1):
            assert batch == [i + k for i in first]  # same series, next window, same row
    assert sorted(i for b in batches for i in b) == list(range(30))
    in_order = list(ConsecutiveWindowsBatchSampler(30, 3, 4, shuffle=False))
    assert in_order[0] == [0, 3, 6, 9] and in_order[1] == [1, 4, 7, 10]


def test_sampler_refuses_partial_series():
    with pytest.raises(ValueError, match="not whole series of 4 windows"):
        ConsecutiveWindowsBatchSampler(10, 4, 2)


def _run(tmp_path, state, **train):
    cfg = {
        "name": f"recall_{state}", "device": "cpu", "benchmark": RECALL,
        "model": {"hidden_size": 32},
        "train": {"epochs": 8, "batch_size": 16, "lr": 0.01, "state": state, **train},
    }  # fmt: skip
    return run_experiment(cfg, out=tmp_path)


def test_stateful_training_beats_stateless_when_memory_spans_windows(tmp_path):
    stateless, stateful = _run(tmp_path, "reset"), _run(tmp_path, "stateful")
    chance_bound = (1 + 3 / 4) / 4  # stateless: only the first window holds the cue
    la_reset = stateless.metrics["learning_accuracy"]
    la_state = stateful.metrics["learning_accuracy"]
    assert la_reset < chance_bound + 0.05
    assert la_state > la_reset + 0.2
    assert np.all(np.diag(stateful.accuracy_matrix) > chance_bound + 0.1)


def test_stateful_needs_a_windowed_benchmark_and_a_compatible_strategy(tmp_path):
    with pytest.raises(ConfigError, match="needs a benchmark of consecutive windows"):
        run_experiment({"train": {"state": "stateful"}}, out=tmp_path)
    with pytest.raises(ConfigError, match="does not work with strategy 'replay'"):
        run_experiment(
            {"benchmark": RECALL, "train": {"state": "stateful"}, "strategy": {"name": "replay"}},
            out=tmp_path,
        )
    with pytest.raises(ConfigError, match="cannot be combined with model.bidirectional"):
        run_experiment(
            {"benchmark": RECALL, "train": {"state": "stateful"}, "model": {"bidirectional": True}},
            out=tmp_path,
        )
    assert list(tmp_path.iterdir()) == []
