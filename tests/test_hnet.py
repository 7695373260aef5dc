"""HNET (strategy ``hnet``): the hypernetwork's weights are the ones the model runs with, the
output regulariser (0 for unchanged earlier outputs, > 0 for changed ones, each earlier task's
own head only), only the hypernetwork trains, the orthogonal penalty on generated weights, and
runs (determinism, resume) on the Copy Task."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from avalanche.core import SupervisedPlugin

from clstm import run_experiment
from clstm.models.encoder import RecurrentEncoder
from clstm.models.multitask import FixedTaskHeads
from clstm.plugins.hnet import ChunkedHypernetwork, HNETPlugin, HyperModel
from clstm.plugins.orthogonal import orthogonal_penalty

CONFIG = {
    "name": "hnet", "seed": 0, "device": "cpu",
    "benchmark": {"name": "copy", "n_experiences": 3, "n_train": 64, "n_test": 32},
    "model": {"type": "rnn", "hidden_size": 16, "elman_output": True},
    "strategy": {"name": "hnet", "chunk_size": 300, "hidden": [20, 20]},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01, "lr_schedule": "none"},
}  # fmt: skip


def model_and_batch(n_tasks=3):
    encoder = RecurrentEncoder(n_features=4, cell="rnn", hidden_size=6, per_step=True,
                               elman_output=True)  # fmt: skip
    model = FixedTaskHeads(encoder, n_outputs=3, n_tasks=n_tasks)
    x = torch.cat([torch.randn(5, 7, 4), torch.ones(5, 7, 1)], dim=-1)
    x[2, 5:, -1] = 0
    return model, x


def test_the_chunks_cover_every_weight():
    hnet = ChunkedHypernetwork(1001, n_tasks=2, chunk_size=250, hidden=(8,))
    assert hnet(0).shape == (1001,) and len(hnet.chunk_embs) == 5
    assert not torch.equal(hnet(0), hnet(1))  # a weight set per task embedding


def test_the_model_runs_with_the_generated_weights():
    model, x = model_and_batch()
    reference = copy.deepcopy(model)
    hyper = HyperModel(model, n_tasks=3, chunk_size=100, hidden=(8,))
    assert list(model.parameters()) == []  # its own weights are buffers now: only shapes
    assert {n.split(".")[0] for n, _ in hyper.named_parameters()} == {"hnet"}
    for task in range(3):
        with torch.no_grad():
            for name, p in reference.named_parameters():
                p.copy_(hyper.weights(task)[name])
        torch.testing.assert_close(hyper(x, task), reference(x, task))
    mixed = torch.tensor([0, 1, 1, 2, 0])
    out = hyper(x, mixed)
    for row, task in enumerate(mixed.tolist()):  # each row through its task's weights, at its
        single = hyper(x[row : row + 1], task)[0]  # real steps (later ones carry no target)
        torch.testing.assert_close(out[row, : len(single)], single)


def test_padding_after_the_sequences_changes_no_output_at_their_steps():
    model, x = model_and_batch()
    hyper = HyperModel(model, n_tasks=3, chunk_size=100, hidden=(8,))
    padded = torch.cat([x, torch.zeros(5, 4, 5)], dim=1)  # four more steps of padding
    torch.testing.assert_close(hyper(padded, 1)[:, :7], hyper(x, 1))


def test_the_regulariser_is_zero_for_unchanged_outputs_and_positive_for_changed_ones():
    model, x = model_and_batch()
    hyper = HyperModel(model, n_tasks=3, chunk_size=100, hidden=(8,))
    plugin = HNETPlugin(beta=2.0)
    strategy = SimpleNamespace(model=hyper, experience=SimpleNamespace(task_label=2),
                               loss=torch.zeros(()))  # fmt: skip
    plugin.before_training_exp(strategy)
    assert sorted(plugin.kept) == [0, 1]  # earlier tasks only, not the current one
    plugin.before_backward(strategy)
    assert strategy.loss.item() == 0.0
    with torch.no_grad():
        hyper.hnet.mlp[-1].bias.add_(0.1)  # every generated weight moves by 0.1
    strategy.loss = torch.zeros(())
    plugin.before_backward(strategy)
    # mean over the 2 earlier tasks of the sum of squares over each one's kept weights
    expected = 2.0 * np.mean([0.01 * int(hyper.kept_weights(i).sum()) for i in (0, 1)])
    assert strategy.loss.item() == pytest.approx(expected, rel=1e-4)


def test_each_earlier_task_keeps_its_own_head_and_the_shared_weights():
    model, _ = model_and_batch()
    hyper = HyperModel(model, n_tasks=3, chunk_size=100, hidden=(8,))
    names = [(name, int(np.prod(shape))) for name, shape in hyper.shapes]
    mask, start = hyper.kept_weights(1), 0
    for name, size in names:
        kept = bool(mask[start : start + size].all())
        assert kept == (not name.startswith("heads.") or name.startswith("heads.1."))
        assert bool(mask[start : start + size].any()) == kept
        start += size


def test_the_orthogonal_penalty_reads_the_generated_weights():
    model, x = model_and_batch()
    hyper = HyperModel(model, n_tasks=3, chunk_size=100, hidden=(8,))
    hyper(x, 1)
    w = hyper.weights(1)["encoder.rnn.weight_hh_l0"]
    expected = (w @ w.T - torch.eye(6)).pow(2).sum()
    torch.testing.assert_close(orthogonal_penalty(hyper), expected)


def test_hnet_trains_the_hypernetwork_alone_and_resumes_bitwise(tmp_path):
    from test_herding import FIRED, StopOnce

    buffers = []

    class Keep(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            buffers.append({n: b.clone() for n, b in strategy.model.target.named_buffers()})

    a = run_experiment(CONFIG, out=tmp_path / "a", plugins=[Keep()])
    assert a.status == "completed", a.error
    for later in buffers[1:]:  # the main network's own weights never change
        assert all(torch.equal(later[n], buffers[0][n]) for n in later)
    b = run_experiment(CONFIG, out=tmp_path / "b")
    np.testing.assert_array_equal(a.accuracy_matrix, b.accuracy_matrix)
    FIRED.clear()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(CONFIG, out=tmp_path / "cut", plugins=[StopOnce()])
    resumed = run_experiment(CONFIG, out=tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(resumed.accuracy_matrix, a.accuracy_matrix)


def test_hnet_is_refused_where_heads_grow(tmp_path):
    from clstm.errors import ConfigError

    config = {**CONFIG, "benchmark": {"name": "seq_digits", "scenario": "class"}}
    with pytest.raises(ConfigError, match="strategy 'hnet' does not support the class scenario"):
        run_experiment(config, out=tmp_path)
