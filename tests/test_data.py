"""Bring-your-own-data: validation, label maps, leakage-free scaling, splits and scenarios."""

import numpy as np
import pytest
import torch

import clstm
from clstm.data.arrays import DataError, benchmark_from_arrays
from clstm.data.sampling import LengthBucketBatchSampler


def _variable(n, f, lengths=(3, 12), classes=("a", "b"), seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((rng.integers(*lengths), f)) * 2 + shift for _ in range(n)]
    y = np.array([classes[i % len(classes)] for i in range(n)])
    return X, y


def _samples(experience):
    x, y, *rest = next(iter(torch.utils.data.DataLoader(experience.dataset, batch_size=100_000)))
    return x, y, (rest[0] if rest else None)


def test_heterogeneous_domain_stream_has_one_shape_and_a_label_map():
    a = _variable(30, 3, (2, 6), classes=("cat", "dog"))
    b = _variable(20, 5, (10, 40), classes=("dog", "emu", "cat"), seed=1)
    bench = benchmark_from_arrays([a, b], [a, b], names=["A", "B"], standardize=False)
    assert bench.scenario_name == "domain" and bench.experience_names == ["A", "B"]
    assert bench.n_features == 5 and bench.n_classes == 3
    assert bench.features_per_experience == [3, 5]
    assert bench.label_maps == [{"cat": 0, "dog": 1, "emu": 2}] * 2  # one map: labels mean the same
    xa, ya, _ = _samples(bench.scenario.train_stream[0])
    xb, _, _ = _samples(bench.scenario.train_stream[1])
    longest = max(len(seq) for seq in a[0] + b[0])
    assert xa.shape[1:] == xb.shape[1:] == (longest, 6)  # longest sequence, widest F + mask
    lengths = xa[..., -1].sum(1).long()
    assert lengths.tolist() == [len(s) for s in a[0]]
    assert torch.all(xa[:, :, 3:5] == 0)  # missing feature channels are zero
    torch.testing.assert_close(
        xa[0, : len(a[0][0]), :3], torch.tensor(a[0][0], dtype=torch.float32)
    )
    assert ya.tolist() == [0 if c == "cat" else 1 for c in a[1]]
    assert list(bench.scenario.train_stream[0].dataset.lengths) == lengths.tolist()


def test_integer_string_labels_sort_numerically():
    X, _ = _variable(12, 2)
    y = np.array(["10", "2", "1"] * 4)
    bench = benchmark_from_arrays([(X, y)], [(X, y)], standardize=False)
    assert bench.label_maps == [{"1": 0, "2": 1, "10": 2}]


def test_task_scenario_labels_each_experience_and_maps_labels_per_task():
    a, b = _variable(20, 2, classes=(5, 7)), _variable(24, 4, classes=(0, 1, 2), seed=2)
    bench = benchmark_from_arrays([a, b], [a, b], scenario="task")
    for t, experience in enumerate(bench.scenario.train_stream):
        assert experience.task_label == t
        _, y, tasks = _samples(experience)
        assert set(tasks.tolist()) == {t}
    assert bench.label_maps == [{"5": 0, "7": 1}, {"0": 0, "1": 1, "2": 2}]
    assert bench.classes_per_experience == [[0, 1], [0, 1, 2]]
    assert bench.scenario.test_stream[1].task_label == 1


def test_class_scenario_keeps_every_class_when_they_do_not_divide_evenly():
    X, y = _variable(70, 2, classes=tuple("abcdefg"))
    bench = benchmark_from_arrays([(X, y)], [(X, y)], scenario="class", n_experiences=3)
    groups = [sorted(e.classes_in_this_experience) for e in bench.scenario.train_stream]
    assert groups == [[0, 1, 2], [3, 4], [5, 6]]  # Avalanche alone would drop class 'g'
    assert sum(len(e.dataset) for e in bench.scenario.train_stream) == 70
    assert bench.experience_names == ["classes a,b,c", "classes d,e", "classes f,g"]


def test_class_order_is_honoured():
    X, y = _variable(40, 2, classes=(0, 1, 2, 3))
    bench = benchmark_from_arrays(
        [(X, y)], [(X, y)], scenario="class", n_experiences=2, class_order=[3, 1, 0, 2]
    )
    groups = [sorted(e.classes_in_this_experience) for e in bench.scenario.train_stream]
    assert groups == [[1, 3], [0, 2]]
    with pytest.raises(DataError, match="class_order must list each of the 4 classes once"):
        benchmark_from_arrays([(X, y)], [(X, y)], scenario="class", class_order=[0, 1])


def test_standardisation_uses_training_statistics_only():
    train = _variable(60, 3, shift=5.0)
    test = _variable(40, 3, shift=9.0, seed=3)
    bench = benchmark_from_arrays([train], [test], validation=0.25, seed=0)

    def real_steps(stream):  # noqa: E306
        x, _, _ = _samples(stream[0])
        return x[..., :3][x[..., -1] > 0].double()

    fitted = real_steps(bench.scenario.train_stream)
    torch.testing.assert_close(
        fitted.mean(0), torch.zeros(3, dtype=torch.double), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        fitted.std(0, correction=0), torch.ones(3, dtype=torch.double), atol=1e-4, rtol=0
    )
    # The test set shifted by +4 stays shifted (by ~4/2 = 2 std): its own statistics were not used.
    assert float(real_steps(bench.scenario.test_stream).mean()) > 1.5
    # The held-out validation split was not part of the fit either.
    assert float(real_steps(bench.scenario.valid_stream).mean().abs()) > 1e-4


def test_validation_split_is_stratified_and_exposed_as_a_stream():
    X, y = _variable(100, 2, classes=("x", "y", "z", "w"))
    bench = benchmark_from_arrays([(X, y)], [(X, y)], validation=0.2)
    assert bench.has_validation
    _, yv, _ = _samples(bench.scenario.valid_stream[0])
    _, yt, _ = _samples(bench.scenario.train_stream[0])
    assert len(yv) == 20 and len(yt) == 80
    assert np.bincount(yv.numpy()).tolist() == [5, 5, 5, 5]


GOOD = _variable(8, 2)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        (
            (np.full((4, 5, 2), np.nan), np.zeros(4)),
            "train dataset 0 ('exp0'): sequence 0 contains NaN",
        ),
        (
            ([np.ones((3, 2)), np.ones((2, 2)) * np.inf], [0, 1]),
            "sequence 1 contains NaN or infinite",
        ),
        (([np.ones((3, 2)), np.ones((0, 2))], [0, 1]), "sequence 1 has length 0"),
        (
            ([np.ones((3, 2)), np.ones((3, 4))], [0, 1]),
            "sequence 1 has 4 features but sequence 0 has 2",
        ),
        (([], []), "the dataset is empty"),
        ((np.ones((0, 5, 2)), np.zeros(0)), "the dataset is empty"),
        ((np.ones((4, 5, 2)), [0.5, 1, 0, 1]), "labels must be integer-like"),
        ((np.ones((4, 5, 2)), [True, False, True, False]), "labels must be integers"),
        ((np.ones((4, 5, 2)), [{}, {}, {}, {}]), "labels must be integers"),
        ((np.ones((4, 5, 2)), [0, 1, 0]), "X has 4 sequences but y has 3 labels"),
        ((np.ones(10), np.zeros(10)), "X has shape (10,)"),
        ((np.ones((4, 5)), np.zeros(4)), "for univariate series use shape (N, T, 1)"),
        ((np.ones((4, 5, 2)), np.zeros((4, 2))), "y must be one label per sequence"),
    ],
)
def test_bad_data_is_named_and_explained(train, message):
    with pytest.raises(DataError) as info:
        benchmark_from_arrays([GOOD, train], [GOOD, GOOD], names=["fine", "broken"])
    assert message.replace("0 ('exp0')", "1 ('broken')") in str(info.value)
    assert "'broken'" in str(info.value)


def test_train_test_mismatches_are_named():
    with pytest.raises(
        DataError, match=r"dataset 0 \('exp0'\): train has 2 features but test has 3"
    ):
        benchmark_from_arrays([GOOD], [_variable(4, 3)])
    with pytest.raises(DataError, match=r"test labels \['zebra'\] never occur"):
        benchmark_from_arrays([GOOD], [(GOOD[0][:2], np.array(["a", "zebra"]))])
    with pytest.raises(DataError, match="train has 1 datasets but test has 2"):
        benchmark_from_arrays([GOOD], [GOOD, GOOD])


def test_length_bucketed_batches_cover_everything_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, 257, size=1000)
    sampler = LengthBucketBatchSampler(lengths, 32, generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(1000)[:32]]) for _ in range(50)])
    assert spread < random_spread / 5  # little padding inside a batch
    again = list(LengthBucketBatchSampler(lengths, 32, generator=torch.Generator().manual_seed(0)))
    assert again == batches  # reproducible under a seed
    other = list(LengthBucketBatchSampler(lengths, 32, generator=torch.Generator().manual_seed(1)))
    assert other != batches  # and random across epochs/seeds
    assert len(list(LengthBucketBatchSampler(lengths, 32, drop_last=True))) == 1000 // 32


def test_public_api_exports_the_data_api():
    assert clstm.benchmark_from_arrays is benchmark_from_arrays


def test_class_scenario_over_several_datasets_gives_each_its_own_classes():
    a = _variable(30, 3, (4, 9), classes=("walk", "run"))
    b = _variable(24, 2, (5, 12), classes=(0, 1, 2), seed=1)
    bench = benchmark_from_arrays([a, b], [a, b], scenario="class", names=["HAR", "Gestures"])
    assert bench.scenario_name == "class" and bench.experience_names == ["HAR", "Gestures"]
    assert bench.n_classes == 5 and bench.classes_per_experience == [[0, 1], [2, 3, 4]]
    assert bench.label_maps == [{"run": 0, "walk": 1}, {"0": 2, "1": 3, "2": 4}]
    assert bench.features_per_experience == [3, 2]
    _, y, tasks = _samples(bench.scenario.train_stream[1])
    assert sorted(set(y.tolist())) == [2, 3, 4] and set(tasks.tolist()) == {0}  # no task labels
    stream = bench.scenario.train_stream
    assert [sorted(e.classes_in_this_experience) for e in stream] == [[0, 1], [2, 3, 4]]
    with pytest.raises(DataError, match="each dataset is one experience with its own classes"):
        benchmark_from_arrays([a, b], [a, b], scenario="class", n_experiences=2)


def test_dense_inputs_are_never_changed_by_standardising():
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = (rng.standard_normal((40, 6, 3)) * 5 + 2).astype(dtype)
        y = np.arange(40) % 2
        before = X.copy()
        bench = benchmark_from_arrays([(X, y)], [(X, y)], standardize=True)
        assert np.array_equal(X, before)
        x, _, _ = _samples(bench.scenario.train_stream[0])
        assert abs(float(x[..., :3].mean())) < 1e-5  # standardised inside the benchmark
