"""The speed-ups change no number: stacked batches, the lean evaluator, the training curves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from matplotlib import colormaps

from clstm.data import synthetic
from clstm.data.batches import stacked
from clstm.models import RecurrentEncoder, SequenceClassifier
from clstm.plugins import AccuracyMatrixMetric, LSTMPlugin
from clstm.plugins.evaluation import LeanEvaluationPlugin, _listens
from clstm.plugins.loading import StackedEvalLoaderPlugin
from clstm.plugins.training_curves import EPOCH_ACCURACY, EPOCH_LOSS, TrainingCurvesMetric
from clstm.run.runner import run_experiment

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    cfg = synthetic.Config(
        n_experiences=2, n_train=48, n_test=40, seq_len=(3, 9), n_features=4, n_classes=3
    )
    return synthetic.build(cfg)


def _train(bench, evaluator, plugins=()):
    torch.manual_seed(0)
    model = SequenceClassifier(RecurrentEncoder(n_features=4, hidden_size=8), 3)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16,
        train_epochs=2,
        eval_mb_size=32,
        device="cpu",
        plugins=[LSTMPlugin(), *plugins],
        evaluator=evaluator,
    )
    strategy.eval(bench.scenario.test_stream)
    for experience in bench.scenario.train_stream:
        strategy.train(experience)
        strategy.eval(bench.scenario.test_stream)
    return evaluator.get_all_metrics()


def test_training_curves_equal_avalanches_epoch_metrics(bench):
    # Same names as Avalanche's epoch metrics (TensorBoard curves continue), same values.
    theirs = _train(bench, EvaluationPlugin(loss_metrics(epoch=True), accuracy_metrics(epoch=True)))
    ours = _train(bench, EvaluationPlugin(TrainingCurvesMetric()))
    steps, losses = ours[EPOCH_LOSS]
    assert len(losses) == 4  # 2 experiences x 2 epochs
    assert steps == theirs[EPOCH_LOSS][0]  # x axis: training iterations
    np.testing.assert_allclose(losses, theirs[EPOCH_LOSS][1], rtol=1e-6)
    np.testing.assert_allclose(ours[EPOCH_ACCURACY][1], theirs[EPOCH_ACCURACY][1], rtol=1e-6)
    # train/loss: the last epoch's loss of each experience, at step = experiences trained.
    assert ours["train/loss"] == ([1, 2], [losses[1], losses[3]])


def test_training_curves_fold_batches_of_any_shape_into_the_epoch_means(monkeypatch):
    # Per-step outputs are trimmed to each batch's longest sequence, so kept batches differ in
    # shape; the sums must be the same whichever batches are folded together and when.
    from types import SimpleNamespace

    from clstm.targets import NO_TARGET

    monkeypatch.setattr(TrainingCurvesMetric, "FOLD_EVERY", 2)  # fold after every 2 batches
    gen = torch.Generator().manual_seed(0)
    batches = []
    for n, steps in [(3, 4), (2, 4), (4, 6), (1, 2), (2, 5)]:
        y = torch.randint(0, 3, (n, steps), generator=gen)
        y[0, -1] = NO_TARGET  # a step without a target is not counted
        output = torch.randn(n, steps, 3, generator=gen)
        loss = torch.rand((1,) if n % 2 else (), generator=gen)  # Avalanche's shape and plain
        batches.append((loss, output, y))
    metric = TrainingCurvesMetric()
    for loss, output, y in batches:
        metric.after_training_iteration(SimpleNamespace(loss=loss, mb_output=output, mb_y=y))
    mean_loss, accuracy = metric.result()
    expected_loss = sum(float(loss) * len(y) for loss, _, y in batches) / sum(
        len(y) for _, _, y in batches
    )
    right = sum(int(((o.argmax(-1) == y) & (y != NO_TARGET)).sum()) for _, o, y in batches)
    counted = sum(int((y != NO_TARGET).sum()) for _, _, y in batches)
    assert mean_loss == pytest.approx(expected_loss, rel=1e-6)
    assert accuracy == pytest.approx(right / counted, rel=1e-12)


def _every_metric(matrix):
    return [
        accuracy_metrics(epoch=True, experience=True, stream=True),
        loss_metrics(epoch=True, experience=True, stream=True),
        TrainingCurvesMetric(),
        matrix,
    ]


def test_lean_evaluator_emits_exactly_what_avalanches_does(bench):
    plain = _train(bench, EvaluationPlugin(*_every_metric(AccuracyMatrixMetric())))
    lean = _train(bench, LeanEvaluationPlugin(*_every_metric(AccuracyMatrixMetric())))
    assert plain.keys() == lean.keys()
    for name, (steps, values) in plain.items():
        if name.endswith("accuracy_matrix"):  # images: compare their pixels
            values = [np.asarray(v) for v in values]
            lean_values = [np.asarray(v) for v in lean[name][1]]
            assert all(np.array_equal(a, b) for a, b in zip(values, lean_values, strict=True))
        else:
            assert (steps, values) == tuple(lean[name]), name
    # Callbacks nobody implements are skipped; implemented ones are found through the MRO.
    assert not _listens(AccuracyMatrixMetric, "before_forward")
    assert _listens(AccuracyMatrixMetric, "after_eval_iteration")
    assert _listens(TrainingCurvesMetric, "after_training_iteration")


def test_stacked_batches_are_the_collated_samples(bench):
    dataset = bench.scenario.train_stream[0].dataset.train()
    batches = stacked(dataset)
    assert batches is not None and len(batches) == len(dataset)
    expected = torch.utils.data.default_collate([dataset[i] for i in (5, 0, 17)])
    for got, want in zip(batches[[5, 0, 17]], expected, strict=True):
        assert torch.equal(got, want)
    with_transform = dataset.replace_current_transform_group(lambda x: x * 2)
    assert stacked(with_transform) is None  # samples are not fixed: left to per-sample reads
    assert stacked(dataset, max_bytes=100) is None


def _same_batches(dataset):
    """``stacked`` reads ``dataset`` as whole tensors (asserted), and gets exactly what reading
    every sample through Avalanche's layers gets."""
    from clstm.data.batches import _rows_of_sequences

    assert _rows_of_sequences(dataset) is not None
    fast, slow = stacked(dataset), stacked(dataset, direct_reads=False)
    assert fast.shape == slow.shape and len(fast) == len(slow) == len(dataset)
    assert (fast.parts is None) == (slow.parts is None)
    for got, want in zip(fast.parts or [], slow.parts or [], strict=True):
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b)
    start = 1 if fast.parts is not None else 0
    for a, b in zip(fast.tensors[start:], slow.tensors[start:], strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:7]
    expected = torch.utils.data.default_collate([dataset[int(i)] for i in index])
    for a, b in zip(fast[index], expected, strict=True):
        assert torch.equal(a, b)


def test_stacked_reads_whole_tensors_exactly(bench):
    from avalanche.benchmarks.utils import concat_datasets

    from clstm.data import copy_task
    from clstm.data.arrays import benchmark_from_arrays

    first, second = (e.dataset for e in bench.scenario.train_stream)
    _same_batches(first.train())  # one leaf, every row
    _same_batches(bench.scenario.test_stream[1].dataset.eval())
    _same_batches(first.subset([7, 3, 3, 40, 0]))  # rows picked, repeated, reordered
    _same_batches(concat_datasets([second.subset([5, 1]), first, second.subset([0])]))  # replay
    rng = np.random.default_rng(0)  # leaves of different shapes: stored apart, padded per batch
    short = [rng.standard_normal((int(t), 1)) for t in rng.integers(5, 30, 12)]
    mixed = benchmark_from_arrays(
        [(rng.standard_normal((12, 6, 3)), np.arange(12) % 2), (short, np.arange(12) % 3)],
        [(rng.standard_normal((4, 6, 3)), np.arange(4) % 2), (short[:4], np.arange(4) % 3)],
        scenario="class",
    )
    wide, long = (e.dataset for e in mixed.scenario.train_stream)
    _same_batches(concat_datasets([long.subset([3, 0, 9]), wide.subset([2, 2]), long]))
    copy = copy_task.build(copy_task.Config(n_train=20, n_test=8, n_experiences=2))
    _same_batches(copy.scenario.train_stream[1].dataset)  # per-step targets, task label 1
    # a dataset that is not clstm's sequences is still read sample by sample
    plain = torch.utils.data.TensorDataset(torch.zeros(4, 3, 2), torch.zeros(4))
    assert stacked(plain) is not None


def test_stacked_loading_changes_no_number(tmp_path, tiny_config, monkeypatch):
    import clstm.data.batches as batches
    import clstm.plugins.loading as loading

    used = []
    real = batches.batch_loader

    def spy(*args, **kwargs):
        used.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "batch_loader", spy)
    monkeypatch.setattr(batches, "batch_loader", spy)
    fast = run_experiment(tiny_config, out=tmp_path / "fast")
    assert used  # the stacked path was taken, in training and in evaluation
    monkeypatch.setattr(loading, "stacked", lambda *a, **k: None)
    monkeypatch.setattr(batches, "stacked", lambda *a, **k: None)
    slow = run_experiment(tiny_config, out=tmp_path / "slow")
    np.testing.assert_array_equal(fast.accuracy_matrix, slow.accuracy_matrix)
    np.testing.assert_array_equal(fast.initial_accuracy, slow.initial_accuracy)
    assert fast.metrics["acc"] == slow.metrics["acc"]


def test_eval_loader_stacks_each_test_set_once(bench):
    plugin = StackedEvalLoaderPlugin()
    _train(bench, LeanEvaluationPlugin(AccuracyMatrixMetric()), plugins=[plugin])
    assert len(plugin._cache) == bench.n_experiences  # 3 evaluations, one copy per test set
    assert plugin.__getstate__()["_cache"] == {}  # not carried into checkpoints


def test_heatmap_cells_have_viridis_colours():
    matrix = AccuracyMatrixMetric()
    R = np.array([[0.9, 0.1], [0.4, 0.8]])
    matrix.result = lambda: (np.array([0.5, 0.5]), R)
    image = np.asarray(matrix.heatmap(2))
    assert image.ndim == 3 and image.shape[2] == 3
    # cell (row "0", column 1) holds 0.1: its corner pixel has viridis(0.1)
    left, top, cell_w, cell_h = 44, 22, 40, 22
    pixel = image[top + 1 * cell_h + 2, left + 1 * cell_w + 2]
    expected = (np.array(colormaps["viridis"](0.1)[:3]) * 255).astype(int)
    np.testing.assert_allclose(pixel, expected, atol=1)


def test_benchmark_script_quick_mode_runs(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    for heading in (
        "## 1. Training-loop overhead",
        "## 2. Variable-length sequences",
        "## 3. Evaluation cost",
        "## 4. Start-up",
        "## 5. Memory",
    ):
        assert heading in text
    assert "--quick" in text  # marked as saying nothing about speed
    assert "targets met:" in result.stdout


def test_benchmark_script_measures_one_section_again_and_keeps_the_others(tmp_path):
    # The committed measurements stand in for an earlier full run; only the start-up section
    # is measured again, and the others keep their numbers and say when they were measured.
    kept = json.loads((ROOT / "results" / "BENCHMARKS.json").read_text())
    kept.pop("measured", None)
    kept["date"] = "2001-01-01"
    out = tmp_path / "BENCHMARKS.md"
    out.with_suffix(".json").write_text(json.dumps(kept))
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "bench.py"), "--sections", "startup",
         "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["overhead"] == kept["overhead"] and data["memory"] == kept["memory"]
    assert data["startup"] != kept["startup"]  # measured now (one run per command)
    assert data["measured"]["overhead"]["date"] == "2001-01-01"
    sections = out.read_text().split("\n## ")
    overhead = next(s for s in sections if s.startswith("1. Training-loop overhead"))
    startup = next(s for s in sections if s.startswith("4. Start-up"))
    assert "*This section was measured on 2001-01-01" in overhead
    assert "This section was measured" not in startup  # measured with the header's date
