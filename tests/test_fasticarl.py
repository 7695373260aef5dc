"""FastICARL (strategy ``fasticarl``): the exemplars nearest their class mean, the one-hot BCE,
the nearest-class-mean classifier, and runs (mem_size, determinism, resume) on a variable-length
class-incremental stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from test_herding import assert_deterministic_and_resumes, class_stream

from clstm import run_experiment
from clstm.plugins.fasticarl import MASKED, NCMHead, OneHotBCE, closest_to_mean

CONFIG = {
    "name": "fasticarl", "seed": 0, "device": "cpu", "model": {"hidden_size": 8},
    "strategy": {"name": "fasticarl", "mem_size": 20},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01},
}  # fmt: skip


def test_closest_to_mean_orders_by_distance_to_the_mean():
    features = torch.tensor([[0.0, 0.0], [4.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    # mean (2, 0): distances 2, 2, 1, 0, 1 -> 3; then 2 and 4 (tie: lower index); then 0 and 1
    assert closest_to_mean(features, 5).tolist() == [3, 2, 4, 0, 1]
    assert closest_to_mean(features, 2).tolist() == [3, 2]


def test_one_hot_bce_is_the_mean_over_units():
    logits, y = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([2])
    by_hand = -(np.log(1 - 1 / (1 + np.exp(-2.0))) + np.log(1 - 1 / (1 + np.exp(1.0)))
                + np.log(1 / (1 + np.exp(-0.5)))) / 3  # fmt: skip
    assert OneHotBCE()(logits, y).item() == pytest.approx(by_hand)


def test_ncm_head_answers_with_the_nearest_normalised_mean_in_eval_mode():
    head = NCMHead(torch.nn.Linear(2, 3))
    features = torch.tensor([[1.0, 0.1], [0.1, 2.0]])
    torch.testing.assert_close(head(features), head.head(features))  # no means yet
    head.set_means({0: torch.tensor([5.0, 0.0]), 2: torch.tensor([0.0, 0.5])})
    torch.testing.assert_close(head(features), head.head(features))  # training mode: linear
    head.eval()
    scores = head(features)
    assert scores.argmax(dim=1).tolist() == [0, 2] and (scores[:, 1] == MASKED).all()
    expected = -torch.linalg.norm(F.normalize(features[0], dim=0) - torch.tensor([1.0, 0.0]))
    assert scores[0, 0].item() == pytest.approx(expected.item())


def test_memory_and_class_means_after_every_experience(tmp_path):
    seen = []

    class Probe(SupervisedPlugin):
        def before_eval(self, strategy, **kwargs):  # after each experience's memory update
            plugin = next(p for p in strategy.plugins if hasattr(p, "storage_policy"))
            head = strategy.model.head
            if plugin.storage_policy.buffer_groups:
                seen.append((len(plugin.storage_policy.buffer), int(head.known.sum())))

    result = run_experiment(CONFIG, benchmark=class_stream(), out=tmp_path, plugins=[Probe()])
    assert result.status == "completed", result.error
    assert seen == [(20, 2), (20, 4), (20, 6)]  # mem_size exactly; a mean per class seen


def test_fasticarl_is_deterministic_and_resumes_bitwise(tmp_path):
    assert_deterministic_and_resumes(tmp_path, CONFIG)


def test_continual_evaluation_at_the_boundaries_equals_the_matrix(tmp_path):
    """The class means are set before continual evaluation's boundary point, so its values are
    the matrix's rows; during an experience its new classes have no mean and score 0."""
    result = run_experiment(CONFIG, benchmark=class_stream(), out=tmp_path,
                            overrides=["eval.every=3"])  # fmt: skip
    curves = result.metrics["curves"]
    test = curves["streams"]["test"]["accuracy"]
    for k, end in enumerate(curves["boundaries"]):
        at = [v for it, te, v in zip(test["iteration"], test["tested"], test["value"],
                                     strict=True) if it == end]  # fmt: skip
        np.testing.assert_allclose(at, result.accuracy_matrix[k, : k + 1])
    during = [v for it, tr, te, v in zip(test["iteration"], test["trained"], test["tested"],
                                         test["value"], strict=True)
              if tr == te == 1 and it < curves["boundaries"][1]]  # fmt: skip
    assert during and all(v == 0 for v in during)
