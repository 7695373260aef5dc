"""CLOPS (strategy ``clops``): the importance weights' update on a hand-made batch, the area
under their curves, the memory of the most important sequences, and runs (mem_size,
determinism, resume) on a variable-length class-incremental stream."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from test_herding import assert_deterministic_and_resumes, class_stream

from clstm import run_experiment
from clstm.plugins.clops import CLOPSPlugin, area_under

CONFIG = {
    "name": "clops", "seed": 0, "device": "cpu", "model": {"hidden_size": 8},
    "strategy": {"name": "clops", "mem_size": 20, "beta_lr": 0.05},
    "train": {"epochs": 3, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def test_area_under_is_the_trapezoidal_rule():
    history = torch.tensor([[1.0, 1.0], [0.5, 2.0], [0.0, 2.0]])
    torch.testing.assert_close(area_under(history), torch.tensor([0.75 + 0.25, 1.5 + 2.0]))
    torch.testing.assert_close(area_under(history[:1]), history[0])


def test_each_weight_takes_its_own_gradient_step():
    plugin = CLOPSPlugin(mem_size=4, beta_lr=0.1, lambda_beta=2.0)
    plugin.beta, plugin._memory = torch.tensor([1.0, 0.5, 1.5, 1.0]), None
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    y, index = torch.tensor([0, 0, 1]), torch.tensor([2, 1, 3])
    strategy = SimpleNamespace(mbatch=[None, y, None, index], mb_output=logits, mb_y=y,
                               device="cpu")  # fmt: skip
    plugin.before_training_iteration(strategy)
    assert len(strategy.mbatch) == 3  # the index is off the batch
    plugin.before_backward(strategy)
    ce = F.cross_entropy(logits, y, reduction="none").detach()
    beta = torch.tensor([1.5, 0.5, 1.0])
    expected_loss = (ce * beta).mean() + 2.0 * ((beta - 1) ** 2).mean()
    assert strategy.loss.item() == pytest.approx(expected_loss.item())
    strategy.loss.backward()
    plugin.after_backward(strategy)
    # d loss / d beta_i = CE_i / B + lambda * 2 (beta_i - 1) / B, with B = 3
    step = ce / 3 + 2.0 * 2 * (beta - 1) / 3
    torch.testing.assert_close(plugin.beta[index], beta - 0.1 * step)
    assert plugin.beta[0].item() == 1.0  # not in the batch: unchanged


def test_the_memory_keeps_each_class_s_most_important_sequences(tmp_path):
    seen = {}

    class Probe(SupervisedPlugin):
        def after_training_exp(self, strategy, **kwargs):  # runs before CLOPS's
            seen.setdefault("data", strategy.experience.dataset)

        def before_eval(self, strategy, **kwargs):  # after each experience's memory update
            plugin = next(p for p in strategy.plugins if isinstance(p, CLOPSPlugin))
            if plugin.storage_policy.buffer_groups and "area" not in seen:
                seen["area"] = area_under(torch.stack(plugin.history))
                groups = plugin.storage_policy.buffer_groups
                seen["groups"] = {key: g.buffer for key, g in groups.items()}

    result = run_experiment(CONFIG, benchmark=class_stream(), out=tmp_path, plugins=[Probe()])
    assert result.status == "completed", result.error
    data, area = seen["data"], seen["area"]
    assert len(area) == len(data) and not torch.all(area == area[0])  # the weights moved
    for (_, c), memory in seen["groups"].items():
        rows = torch.as_tensor(data.targets.val_to_idx[c])
        best = rows[torch.argsort(area[rows], descending=True, stable=True)[: len(memory)]]
        assert len(memory) == 10  # 20 sequences, two classes
        for position, i in enumerate(best.tolist()):
            torch.testing.assert_close(memory[position][0], data[i][0], rtol=0, atol=0)


def test_clops_fills_mem_size_and_is_deterministic_and_resumes_bitwise(tmp_path):
    sizes = []

    class Probe(SupervisedPlugin):
        def before_eval(self, strategy, **kwargs):
            plugin = next(p for p in strategy.plugins if isinstance(p, CLOPSPlugin))
            if plugin.storage_policy.buffer_groups:
                sizes.append(len(plugin.storage_policy.buffer))

    assert_deterministic_and_resumes(tmp_path, CONFIG, extra_plugins=[Probe()])
    assert sizes == [20, 20, 20]


def test_clops_in_the_task_scenario_reads_the_task_labels(tmp_path):
    """The sequence index the loader adds is taken off the batch before anything reads the task
    labels (the batch's last element)."""
    labels = []

    class Probe(SupervisedPlugin):
        def before_forward(self, strategy, **kwargs):
            labels.append(set(strategy.mb_task_id.tolist()))

    result = run_experiment(CONFIG, benchmark=class_stream("task"), out=tmp_path,
                            plugins=[Probe()])  # fmt: skip
    assert result.status == "completed", result.error
    assert set().union(*labels) == {0, 1, 2}
