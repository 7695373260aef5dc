"""Shared fixtures: a tiny synthetic experiment that trains in about a second."""

from __future__ import annotations

import copy

import pytest

TINY = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "benchmark": {
        "name": "synthetic",
        "n_experiences": 3,
        "n_train": 64,
        "n_test": 40,
        "seq_len": [3, 9],
        "n_features": 4,
        "n_classes": 3,
    },
    "model": {"type": "lstm", "hidden_size": 8},
    "strategy": {"name": "naive"},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
    "eval": {"batch_size": 32},
}


@pytest.fixture(scope="session")
def make_tiny_config():
    """A function returning fresh copies of the tiny config (for wider-scoped fixtures)."""
    return lambda: copy.deepcopy(TINY)


@pytest.fixture
def tiny_config(make_tiny_config) -> dict:
    """A fresh copy of the tiny experiment config (a plain dict)."""
    return make_tiny_config()
