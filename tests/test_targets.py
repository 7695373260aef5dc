"""Per-step targets: losses and accuracies on hand-computed cases, per-step models, the Copy Task
generator, and every strategy on a per-step stream (works, or is refused in one line)."""

import collections
import math

import numpy as np
import pytest
import torch

from clstm.config import ConfigError
from clstm.data import copy_task
from clstm.data.sequences import pad_sequences
from clstm.models import RecurrentEncoder, SequenceClassifier
from clstm.run.runner import run_experiment
from clstm.strategies import STRATEGIES
from clstm.targets import NO_TARGET, count_correct, criterion, kind_of

N = NO_TARGET


def test_per_step_cross_entropy_sums_target_steps_per_sequence():
    # two sequences, 3 steps, 2 classes; step 0 of each carries no target
    output = torch.tensor([[[9.0, 0.0], [0.0, 0.0], [2.0, 0.0]], [[0.0, 9.0], [1.0, 0.0], [0, 0]]])
    y = torch.tensor([[N, 1, 0], [N, 0, N]])
    ln2 = math.log(2)
    expected = (ln2 + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert criterion("per_step")(output, y).item() == pytest.approx(expected)
    correct, counted = count_correct(output, y)
    # step (0, 1): tie -> argmax 0, wrong; (0, 2): right; (1, 1): right
    assert (correct.item(), counted.item()) == (2, 3)


def test_per_step_bits_bce_and_bit_accuracy():
    output = torch.tensor([[[3.0, -1.0], [0.0, 0.0]]])  # (1, 2 steps, 2 bits)
    y = torch.tensor([[[N, N], [1.0, 0.0]]])  # only step 1 carries bits
    expected = math.log(2) + math.log(2)  # logits 0: each bit costs log 2; summed per sequence
    assert criterion("per_step_bits")(output, y).item() == pytest.approx(expected)
    correct, counted = count_correct(output, y)
    assert (correct.item(), counted.item()) == (1, 2)  # logit 0 reads as 1: right, then wrong


def test_targets_beyond_the_batch_steps_are_refused_and_kinds_are_read_from_shapes():
    output = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="targets beyond step 2"):
        criterion("per_step")(output, torch.tensor([[N, N, 1]]))
    loss = criterion("per_step")(output, torch.tensor([[1, N, N, N]]))  # padding after: fine
    assert loss.item() == pytest.approx(math.log(3))
    assert kind_of(torch.zeros(4, dtype=torch.long)).name == "sequence"
    assert kind_of(torch.zeros(4, 5, dtype=torch.long)).name == "per_step"
    assert kind_of(torch.zeros(4, 5, 2)).name == "per_step_bits"
    assert kind_of(torch.zeros(4, 5)).name == "regression"
    with pytest.raises(ValueError, match="none of"):
        kind_of(torch.zeros(4, 5, 2, dtype=torch.long))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_per_step_outputs_at_real_steps_do_not_depend_on_padding(cell, packing):
    torch.manual_seed(0)
    model = SequenceClassifier(
        RecurrentEncoder(n_features=3, cell=cell, hidden_size=8, packing=packing, per_step=True),
        n_classes=4,
    ).eval()
    rng = np.random.default_rng(0)
    short = [rng.standard_normal((4, 3)).astype(np.float32)]
    longer = [rng.standard_normal((n, 3)).astype(np.float32) for n in (30, 9)]
    with torch.no_grad():
        alone = model(pad_sequences(short))  # (1, 4, 4)
        batched = model(pad_sequences(longer + short))[-1:, :4]
        padded = model(pad_sequences(short, max_len=50))
    assert alone.shape == (1, 4, 4) and padded.shape == (1, 4, 4)  # trimmed to the longest
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


def _copy(**options):
    return copy_task.Config(**{"n_train": 20, "n_test": 8, **options})


def test_permuted_copy_targets_are_the_pattern_with_its_steps_permuted():
    config = _copy()
    x = copy_task.inputs(config, 20, 0)
    assert x.shape == (20, 11, 8)  # i + 1 + p steps; 7 bits + the stop bit
    assert (x[:, 5, 7] == 1).all() and x[:, np.r_[0:5, 6:11], 7].sum() == 0  # stop bit at step i
    assert (x[:, 5:, :7] == 0).all()  # silent after the pattern
    for task in range(2):
        y = copy_task.targets(config, x, task)
        (perm,) = copy_task.permutations(config, task)
        assert (y[:, :6] == NO_TARGET).all()  # no target while the input is shown
        np.testing.assert_array_equal(y[:, 6:], x[:, perm, :7])
    assert not np.array_equal(copy_task.permutations(config, 0), copy_task.permutations(config, 1))
    np.testing.assert_array_equal(x, copy_task.inputs(config, 20, 0))  # deterministic


@pytest.mark.parametrize("variant", ["permuted", "padded", "pattern"])
def test_the_ehret2021_draw_gives_the_tasks_their_code_makes(variant):
    """Their data, transcribed step by step from ``CopyTask._generate_trial_samples``,
    ``output_to_torch_tensor`` and ``generate_copy_tasks`` (mariacer/cl_in_rnns): time-major
    ``rand() > 0.5``, each task's permutation a row shuffle of the flattened pattern's indices."""
    n_train, n_test, w = 30, 6, 7
    options = {"xor_iter": 2} if variant == "pattern" else {}
    config = _copy(variant=variant, seed=42, draw="ehret2021", n_train=n_train, n_test=n_test,
                   **options)  # fmt: skip
    i, p = (25, 5) if variant == "padded" else (5, 5)
    state = np.random.RandomState(42)
    theirs = []
    for n in (n_train, n_test):
        x = np.where(state.rand(i + 1 + p, n, w) > 0.5, 1.0, 0)
        x[p:] = 0  # input_len and pat_len -1 (i = p), or pat_len: zero after the pattern
        flag = np.zeros((i + 1 + p, n, 1))
        flag[i] = 1.0
        theirs.append(np.concatenate([x, flag], axis=2).transpose(1, 0, 2))
    bench = copy_task.build(config)
    seeds = np.random.RandomState(42)
    for exp in bench.scenario.train_stream:
        rows = np.random.RandomState(seeds.randint(1000))
        perms = [rows.permutation(np.arange(p * w).reshape(p, w)).flatten()
                 for _ in range(options.get("xor_iter", 1))]  # fmt: skip
        pattern = theirs[0][:, :p, :w].reshape(n_train, -1)
        out = pattern[:, perms[0]]
        if variant == "pattern":  # XOR with each separately permuted copy, in turn
            out = pattern.astype(bool)
            for perm in perms:
                out = np.logical_xor(pattern[:, perm], out)
        x, y = (torch.stack([torch.as_tensor(exp.dataset[k][c]) for k in range(n_train)])
                for c in (0, 1))  # fmt: skip
        np.testing.assert_array_equal(x.numpy()[..., : w + 1], theirs[0])
        np.testing.assert_array_equal(y.numpy()[:, -p:].reshape(n_train, -1), out)
    test_x = bench.scenario.test_stream[0].dataset[n_test - 1][0].numpy()[..., : w + 1]
    np.testing.assert_array_equal(test_x, theirs[1][-1])  # drawn after the training set


def test_padded_copy_and_pattern_manipulation():
    padded = _copy(variant="padded")
    x = copy_task.inputs(padded, 20, 0)
    assert x.shape == (20, 31, 8) and (x[:, 5:25] == 0).all() and (x[:, 25, 7] == 1).all()
    y = copy_task.targets(padded, x, 0)
    assert (y[:, :26] == NO_TARGET).all() and y[:, 26:].shape == (20, 5, 7)

    pattern = _copy(variant="pattern", xor_iter=2)
    x = copy_task.inputs(pattern, 20, 0)
    bits = x[:, :5, :7].astype(bool)
    p1, p2 = copy_task.permutations(pattern, 0)
    expected = bits ^ bits[:, p1] ^ bits[:, p2]  # Ehret et al.'s XOR with separate permutations
    np.testing.assert_array_equal(copy_task.targets(pattern, x, 0)[:, 6:], expected)
    with pytest.raises(ValueError, match="xor_iter applies to variant: pattern"):
        _copy(xor_iter=2)


def test_copy_benchmark_stores_the_shared_inputs_once():
    bench = copy_task.build(_copy(n_experiences=3))
    assert bench.target == "per_step_bits" and bench.n_classes == 7
    leaves = [e.dataset._flat_data._datasets[0] for e in bench.scenario.train_stream]
    assert leaves[0].x is leaves[1].x is leaves[2].x  # one tensor for the three tasks
    x, y, t = bench.scenario.train_stream[2].dataset[0]
    assert x.shape == (11, 9) and y.shape == (11, 7) and y.dtype == torch.float32 and t == 2


TINY_COPY = {
    "name": "tiny_copy", "device": "cpu",
    "benchmark": {"name": "copy", "n_experiences": 3, "n_train": 64, "n_test": 32},
    "model": {"type": "rnn", "hidden_size": 16},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.01, "lr_schedule": "none"},
}  # fmt: skip
SUPPORTED = sorted(n for n, e in STRATEGIES.items() if "per_step_bits" in e.targets)


@pytest.mark.parametrize("strategy", SUPPORTED)
def test_every_supported_strategy_runs_on_per_step_targets(tmp_path, strategy):
    params = {"policy": "reservoir", "mem_size": 32} if strategy == "replay" else {}
    cfg = {**TINY_COPY, "strategy": {"name": strategy, **params}}
    result = run_experiment(cfg, out=tmp_path)
    assert result.status == "completed", result.error
    R = result.accuracy_matrix
    rows = R[-1:] if strategy == "joint" else R
    assert np.all((rows >= 0) & (rows <= 1)) and not np.isnan(rows).any()
    again = run_experiment(cfg, out=tmp_path / "again")
    np.testing.assert_array_equal(again.accuracy_matrix, R)  # deterministic


def test_per_step_targets_are_learned_and_forgotten(tmp_path):
    cfg = {
        **TINY_COPY, "strategy": {"name": "naive"},
        "benchmark": {**TINY_COPY["benchmark"], "n_train": 2000, "n_test": 200},
        "model": {"type": "rnn", "hidden_size": 64},
        "train": {"epochs": 6, "batch_size": 64, "lr": 0.003, "lr_schedule": "none"},
    }  # fmt: skip
    R = run_experiment(cfg, out=tmp_path).accuracy_matrix
    assert np.diag(R).min() > 0.7  # each task's bits learned well above chance (0.5)
    assert R[-1, 0] < R[0, 0] - 0.1  # and the first one forgotten after the others


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - set(SUPPORTED)))
def test_strategies_that_need_a_class_per_sequence_are_refused(tmp_path, strategy):
    cfg = {**TINY_COPY, "strategy": {"name": strategy}}
    with pytest.raises(ConfigError, match=f"'{strategy}' does not support per_step_bits targets"):
        run_experiment(cfg, out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_class_balanced_replay_and_the_class_scenario_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="set strategy.policy: experience_balanced or reservoir"):
        replay = {"name": "replay", "policy": "class_balanced"}
        run_experiment({**TINY_COPY, "strategy": replay}, out=tmp_path)
    with pytest.raises(ConfigError, match="scenario: 'class' is not supported"):
        bench = {**TINY_COPY["benchmark"], "scenario": "class"}
        run_experiment({**TINY_COPY, "benchmark": bench}, out=tmp_path)


def test_replay_memory_keeps_per_step_targets(tmp_path):
    from avalanche.training.plugins import SupervisedPlugin

    seen = []

    class Probe(SupervisedPlugin):
        def before_training_exp(self, strategy, **kw):  # the memory of earlier experiences
            replay = next(p for p in strategy.plugins if hasattr(p, "storage_policy"))
            buffer = replay.storage_policy.buffer
            tasks = [int(buffer[i][2]) for i in range(len(buffer))]
            seen.append({t: tasks.count(t) for t in set(tasks)})
            if len(buffer):
                assert buffer[0][1].shape == (11, 7)

    replay = {"name": "replay", "mem_size": 48}  # policy auto: experience_balanced here
    run_experiment({**TINY_COPY, "strategy": replay}, out=tmp_path, plugins=[Probe()])
    assert seen == [{}, {0: 48}, {0: 24, 1: 24}]  # equal shares of every earlier task


class _StopOnce:
    fired = False


def test_der_keeps_each_sample_with_its_own_heads_output_and_matches_target_steps(tmp_path):
    from avalanche.models.utils import avalanche_forward
    from avalanche.training.plugins import SupervisedPlugin

    from clstm.plugins.der import output_matching

    seen = []

    class Probe(SupervisedPlugin):  # after DER has stored the experience's outputs
        def after_training_exp(self, strategy, **kwargs):
            buffer = strategy.storage_policy.buffer
            items = [buffer[n] for n in range(len(buffer))]
            x, y, t, stored = (
                torch.stack([torch.as_tensor(a[k]) for a in items]) for k in range(4)
            )
            seen.append(sorted(collections.Counter(t.tolist()).items()))
            with torch.no_grad():
                strategy.model.eval()
                now = avalanche_forward(strategy.model, x, t)  # each sample through its own head
                strategy.model.train()
            assert stored.shape == y.shape == (len(buffer), 11, 7)
            assert not stored[:, now.shape[1] :].any()  # padded beyond the longest sequence
            new = t == strategy.experience.task_label  # stored by the model as it is now
            torch.testing.assert_close(stored[new, : now.shape[1]], now[new])
            matching = output_matching(now[new], stored[new], y[new]).item()
            assert matching == pytest.approx(0, abs=1e-10)
            if not new.all():  # earlier samples keep the outputs of the model after their task
                assert output_matching(now[~new], stored[~new], y[~new]).item() > 1e-4

    der = {"name": "der", "mem_size": 48, "batch_size_mem": 8}
    result = run_experiment({**TINY_COPY, "strategy": der}, out=tmp_path, plugins=[Probe()])
    assert result.status == "completed"
    assert seen == [[(0, 48)], [(0, 24), (1, 24)], [(0, 16), (1, 16), (2, 16)]]


def test_der_output_matching_on_hand_computed_values():
    from clstm.plugins.der import output_matching

    out = torch.tensor([[[1.0, 2], [0, 0], [5, 5]], [[1.0, 1], [3, 1], [9, 9]]])
    stored = torch.tensor([[[0.0, 0], [7, 7], [5, 3]], [[1.0, 1], [1, 1], [0, 0]]])
    steps = torch.tensor([[5, N, 1], [N, 2, N]])  # per-step classes: step targets, N = none
    # sequence 0: steps 0 and 2: (1 + 4) / 2 + (0 + 4) / 2 = 4.5; sequence 1: step 1: (4 + 0) / 2
    assert output_matching(out, stored, steps).item() == pytest.approx((4.5 + 2.0) / 2)
    bits = steps[..., None].float().expand(2, 3, 2).clamp(max=1).where(steps[..., None] != N, -1.0)
    assert output_matching(out, stored, bits).item() == pytest.approx((4.5 + 2.0) / 2)
    forecast = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert output_matching(forecast, torch.zeros(2, 2), forecast).item() == pytest.approx(39 / 4)


@pytest.mark.parametrize("strategy", ["ewc", "replay", "der", "coresets"])
def test_resume_after_an_interruption_gives_the_same_per_step_run(tmp_path, strategy):
    from avalanche.training.plugins import SupervisedPlugin

    class StopOnce(SupervisedPlugin):
        def before_training_iteration(self, strategy, **kwargs):
            if not _StopOnce.fired and strategy.clock.train_exp_counter == 1:
                _StopOnce.fired = True
                raise KeyboardInterrupt

    params = {"policy": "experience_balanced"} if strategy == "replay" else {}
    cfg = {**TINY_COPY, "strategy": {"name": strategy, **params}}
    full = run_experiment(cfg, out=tmp_path / "full")
    _StopOnce.fired = False
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, out=tmp_path / "cut", plugins=[StopOnce()])
    resumed = run_experiment(cfg, out=tmp_path / "cut", resume=True)
    np.testing.assert_array_equal(resumed.accuracy_matrix, full.accuracy_matrix)


def test_lwf_distils_every_earlier_task_head_on_per_step_bits(tmp_path):
    from avalanche.training.plugins import SupervisedPlugin

    extra = {0: [], 1: [], 2: []}

    class Probe(SupervisedPlugin):  # the loss beyond the task loss = LwF's distillation term
        def after_backward(self, strategy, **kw):
            task_loss = strategy._criterion(strategy.mb_output, strategy.mb_y).item()
            extra[strategy.clock.train_exp_counter].append(strategy.loss.item() - task_loss)

    cfg = {**TINY_COPY, "strategy": {"name": "lwf", "alpha": 1.0}}
    run_experiment(cfg, out=tmp_path, plugins=[Probe()])
    assert max(abs(v) for v in extra[0]) < 1e-6  # nothing to distil from before training
    assert min(extra[1]) > 0 and min(extra[2]) > 0


# --------------------------------------------------------------------------------------------------
# A new target kind is one class and one registry line
# --------------------------------------------------------------------------------------------------


class _BinaryBCE(torch.nn.Module):
    def forward(self, output, y):  # (B, 1) logits, (B,) floats in {0, 1}
        return torch.nn.functional.binary_cross_entropy_with_logits(output[:, 0], y)


def _binary_kind():
    """A toy kind: one yes/no decision per sequence, as (B,) floats (classes are (B,) ints)."""
    import torch.nn.functional as F

    from clstm.errors import DataError
    from clstm.targets import AccuracyKind

    class BinaryKind(AccuracyKind):
        name = "binary"
        description = "one yes/no decision per sequence"

        def matches(self, y):
            return y.dim() == 1 and y.is_floating_point()

        def check_targets(self, x, lengths, y, where):
            if y.ndim != 1 or len(y) != len(x) or not np.isin(y, (0.0, 1.0)).all():
                raise DataError(f"{where}: binary targets are (N,) zeros and ones")

        def stored_targets(self, y, steps):
            return torch.from_numpy(y.astype(np.float32))

        def criterion(self):
            return _BinaryBCE()

        def correct(self, output, y):
            return ((output[:, 0] >= 0).to(y.dtype) == y).sum(), len(y)

        def distill(self, out, prev, steps, temperature):
            t = temperature
            return F.binary_cross_entropy_with_logits(out / t, torch.sigmoid(prev / t))

    return BinaryKind()


@pytest.fixture
def binary_kind():
    from clstm import targets

    kind = targets.register(_binary_kind())  # the one registry line
    yield kind
    del targets.KINDS[kind.name]


def _binary_stream(n_experiences=2, n=160, steps=6, seed=0):
    """Experience e answers whether the sequence's mean lies above 0 (e even) or below (odd):
    rules that contradict each other, so fine-tuning forgets."""
    from clstm.data.stepwise import target_benchmark

    rng = np.random.default_rng(seed)
    splits = {"train": [], "test": []}
    for e in range(n_experiences):
        for split, size in (("train", n), ("test", n // 2)):
            x = rng.standard_normal((size, steps, 2)).astype(np.float32)
            above = (x.mean(axis=(1, 2)) > 0).astype(np.float32)
            y = above if e % 2 == 0 else 1.0 - above
            splits[split].append((x, np.full(size, steps), y))
    return target_benchmark(
        splits["train"], splits["test"], target="binary", n_outputs=1,
        names=[f"rule{e}" for e in range(n_experiences)], scenario="domain",
    )  # fmt: skip


def test_a_registered_kind_runs_end_to_end_with_every_stage_asking_it(
    binary_kind, tiny_config, tmp_path
):
    from clstm.cli import summary_text
    from clstm.report import write_report
    from clstm.strategies import STRATEGIES, check_target
    from clstm.targets import kind_of

    assert (
        kind_of(torch.zeros(3)) is binary_kind
        and kind_of(torch.zeros(3, dtype=torch.long)).name == "sequence"
    )
    bench = _binary_stream()
    assert bench.kind is binary_kind
    config = {**tiny_config, "train": {"epochs": 8, "batch_size": 16, "lr": 0.02}}
    results = {}
    for strategy in ("naive", "lwf", "replay", "ewc", "der", "coresets"):
        config["strategy"] = {"name": strategy}
        results[strategy] = run_experiment(config, benchmark=bench, out=tmp_path / "out")
    naive = results["naive"]
    assert naive.status == "completed" and naive.kind is binary_kind
    assert naive.accuracy_matrix.shape == (2, 2) and naive.accuracy_matrix[0, 0] > 0.7
    assert naive.accuracy_matrix[1, 0] < 0.5  # the second rule overwrote the first
    assert naive.metrics["target"] == "binary" and naive.metrics["forgetting"] > 0.2
    assert all(r.status == "completed" for r in results.values())
    assert "binary" in STRATEGIES["lwf"].targets and "binary" not in STRATEGIES["gdumb"].targets
    with pytest.raises(ConfigError, match="does not support binary targets"):
        check_target("gdumb", binary_kind)  # needs a class per sequence
    text = summary_text(naive, tmp_path / "out")
    assert text.splitlines()[1].startswith("accuracy (rows: after training on")
    assert "ACC " in text and "forgetting " in text
    report = write_report([tmp_path / "out"], out=tmp_path / "report")
    assert report.table.splitlines()[1].split()[:6] == [
        "run",
        "n",
        "ACC",
        "BWT",
        "Forgetting",
        "LA",
    ]
    assert (tmp_path / "report" / "tiny_accuracy.png").exists()
