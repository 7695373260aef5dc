"""Literature benchmarks read from the official file formats: fixture files written by the tests
(IDX for MNIST, ...), never a download."""

from __future__ import annotations

import dataclasses
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clstm.config import load_config
from clstm.data import mnist
from clstm.data.registry import benchmark_module
from clstm.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random dark images whose label is the row of a bright band (learnable from rows)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, 2 * label : 2 * label + 3] = 255
    return x, y


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    """A data root holding the four MNIST files as distributed (.gz), 300 train / 100 test."""
    root = tmp_path_factory.mktemp("data")
    (xtr, ytr), (xte, yte) = _images(300, 0), _images(100, 1)
    mnist.write_files(root, {"train": xtr, "test": xte}, {"train": ytr, "test": yte}, gz=True)
    return root, (xtr, ytr, xte, yte)


def _build(name: str, **options):
    offline = {} if name == "mnist1d" else {"download": False}
    config = load_config({"benchmark": {"name": name, **offline, **options}}).benchmark
    return benchmark_module(name).build(config)


def _all(stream_experience):
    loader = torch.utils.data.DataLoader(stream_experience.dataset, batch_size=10_000)
    x, y, *_ = next(iter(loader))
    return x, y


def test_smnist_reads_rows_from_torchvisions_layout_class_incremental(mnist_root):
    root, (xtr, ytr, _, yte) = mnist_root
    bench = _build("smnist", root=str(root))
    assert bench.scenario_name == "class" and bench.n_experiences == 5
    assert bench.experience_names == [f"classes {a},{a + 1}" for a in range(0, 10, 2)]
    assert (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()  # .gz decompressed
    x, y = _all(bench.scenario.train_stream[1])
    assert x.shape[1:] == (28, 29) and sorted(set(y.tolist())) == [2, 3]  # 28 rows + mask
    images = torch.tensor(xtr[ytr == int(y[0])] / 255.0, dtype=torch.float32)
    assert ((images - x[0, :, :28]).abs().amax(dim=(1, 2)) < 1e-6).any()  # an image of its class
    assert len(bench.scenario.test_stream[4].dataset) == int(np.isin(yte, [8, 9]).sum())


def test_smnist_pixel_reading_and_task_scenario(mnist_root):
    root, (xtr, ytr, _, _) = mnist_root
    bench = _build("smnist", root=str(root), read="pixel", pixels_per_step=4, scenario="task")
    assert bench.scenario_name == "task"
    x, y = _all(bench.scenario.train_stream[0])
    assert x.shape[1:] == (196, 5)  # 784 / 4 steps, 4 pixels + mask
    first = np.flatnonzero(np.isin(ytr, [0, 1]))[0]
    expected = torch.tensor(xtr[first].reshape(196, 4) / 255.0, dtype=torch.float32)
    torch.testing.assert_close(x[0, :, :4], expected)


def test_pmnist_permutes_pixels_per_experience_domain_incremental(mnist_root):
    root, (xtr, _, _, _) = mnist_root
    bench = _build("pmnist", root=str(root), n_experiences=3, seed=7)
    assert bench.scenario_name == "domain" and bench.experience_names == ["perm0", "perm1", "perm2"]
    first_image = lambda experience: _all(experience)[0][0, :, :28].reshape(-1)  # noqa: E731
    rows = [first_image(e) for e in bench.scenario.train_stream]
    original = torch.tensor(xtr[0].reshape(-1) / 255.0, dtype=torch.float32)
    for permuted in rows:  # every experience permuted (none is the original image) ...
        assert not torch.equal(permuted, original)
        torch.testing.assert_close(permuted.sort().values, original.sort().values)  # same pixels
    assert not torch.equal(rows[1], rows[2])  # ... each with its own permutation
    again = _build("pmnist", root=str(root), n_experiences=3, seed=7)
    torch.testing.assert_close(first_image(again.scenario.train_stream[2]), rows[2])
    first = _build("pmnist", root=str(root), n_experiences=2, first_identity=True)
    torch.testing.assert_close(first_image(first.scenario.train_stream[0]), original)


def test_pmnist_step_permutation_moves_whole_rows(mnist_root):
    root, (xtr, _, _, _) = mnist_root
    bench = _build("pmnist", root=str(root), n_experiences=1, permutation="steps")
    x = _all(bench.scenario.train_stream[0])[0][0, :, :28]
    image = torch.tensor(xtr[0] / 255.0, dtype=torch.float32)
    assert sorted(map(tuple, x.tolist())) == sorted(map(tuple, image.tolist()))  # rows kept whole


def test_missing_files_without_download_name_the_folder_and_how_to_fetch(tmp_path):
    with pytest.raises(DataError) as err:
        _build("smnist", root=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "clstm data fetch smnist" in message


def test_a_failed_download_is_one_line_naming_the_url_and_the_benchmark(tmp_path, monkeypatch):
    import time
    import urllib.error
    import urllib.request

    tried = []

    def offline(opener, url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", offline)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    config = load_config({"benchmark": {"name": "pmnist", "root": str(tmp_path)}}).benchmark
    with pytest.raises(DataError, match=r"could not download http.*clstm data fetch pmnist") as err:
        benchmark_module("pmnist").build(config)
    assert "\n" not in str(err.value) and "Name or service not known" in str(err.value)
    from torchvision.datasets import MNIST

    assert len(tried) == 2 * len(MNIST.mirrors)  # every mirror, tried twice (clstm's TRIES)
    assert not list((tmp_path / "MNIST" / "raw").iterdir())  # no .part left behind


def test_corrupt_files_are_named(tmp_path):
    (xtr, ytr), (xte, yte) = _images(20, 0), _images(10, 1)
    raw = mnist.write_files(tmp_path, {"train": xtr, "test": xte}, {"train": ytr, "test": yte})
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")  # truncated header
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is not a valid data file"):
        _build("smnist", root=str(tmp_path))
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01")[:12])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz is not a valid data file"):
        _build("smnist", root=str(tmp_path))
    mnist.write_idx(raw / "t10k-labels-idx1-ubyte", yte[:5])
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="has 10 images but .* has 5 labels"):
        _build("smnist", root=str(tmp_path))


def test_data_root_comes_from_the_environment(mnist_root, monkeypatch):
    root, _ = mnist_root
    monkeypatch.setenv("CLSTM_DATA", str(root))
    bench = _build("smnist", n_experiences=2)
    assert bench.experience_names == ["classes 0,1,2,3,4", "classes 5,6,7,8,9"]


def test_reading_options_are_checked():
    with pytest.raises(Exception, match="pixels_per_step applies to read: pixel"):
        load_config({"benchmark": {"name": "smnist", "pixels_per_step": 4}})
    with pytest.raises(Exception, match="does not divide the 784"):
        load_config({"benchmark": {"name": "pmnist", "read": "pixel", "pixels_per_step": 5}})


def test_cli_run_offline_is_one_line_and_the_data_folder_is_not_in_the_run_name(
    mnist_root, tmp_path
):
    root, _ = mnist_root
    base = [sys.executable, "-m", "clstm.cli", "run", "experiments/smnist_row.yaml"]
    base += ["--out", str(tmp_path / "out"), "--set", "benchmark.download=false"]
    missing = subprocess.run(
        [*base, "--set", f"benchmark.root={tmp_path / 'empty'}"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "clstm data fetch smnist" in missing.stderr and "Traceback" not in missing.stderr
    done = subprocess.run(
        [*base, "--set", f"benchmark.root={root}", "--set", "train.epochs=1",
         "--set", "model.hidden_size=8", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "smnist_row" / "naive_train.epochs=1_model.hidden_size=8").is_dir()


def test_mnist1d_is_the_canonical_dataset_split_and_permuted():
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()
    split = _build("mnist1d")
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # global RNG untouched
    assert split.scenario_name == "class" and split.n_experiences == 5
    sizes = [len(e.dataset) for e in split.scenario.train_stream]
    assert sum(sizes) == 4000 and sum(len(e.dataset) for e in split.scenario.test_stream) == 1000
    canonical = make_dataset(get_dataset_args())
    x, y = _all(split.scenario.train_stream[0])
    assert x.shape[1:] == (40, 2) and set(y.tolist()) == {0, 1}
    ours = x[:, :, 0].double().numpy()
    theirs = canonical["x"][np.isin(canonical["y"], [0, 1])]
    assert np.allclose(np.sort(ours, axis=0), np.sort(theirs, axis=0), atol=1e-6)
    permuted = _build("mnist1d", variant="permuted", n_experiences=3)
    assert permuted.scenario_name == "domain" and permuted.experience_names[0] == "perm0"
    a = _all(permuted.scenario.train_stream[0])[0][0, :, 0]
    b = _all(permuted.scenario.train_stream[1])[0][0, :, 0]
    assert not torch.equal(a, b) and torch.equal(a.sort().values, b.sort().values)


def _write_ts(path, name: str, series: list[np.ndarray], labels: list[str]) -> None:
    """A .ts file in the UCR/UEA archive's format; ``series`` are ``(channels, T_i)`` arrays."""
    channels = series[0].shape[0]
    lines = [
        f"@problemName {name}", "@timeStamps false", "@missing false",
        f"@univariate {'true' if channels == 1 else 'false'}", f"@dimensions {channels}",
        f"@equalLength {'true' if len({s.shape[1] for s in series}) == 1 else 'false'}",
        f"@classLabel true {' '.join(sorted(set(labels)))}", "@data",
    ]  # fmt: skip
    for s, label in zip(series, labels, strict=True):
        lines.append(":".join(",".join(f"{v:.4f}" for v in channel) for channel in s) + f":{label}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _trajectories(root, n: int, seed: int, split: str) -> None:
    """A CharacterTrajectories-like fixture: 3 channels, unequal lengths, 2 classes."""
    rng = np.random.default_rng(seed)
    labels = ["1", "2"] * (n // 2)
    series = [
        rng.standard_normal((3, int(rng.integers(8, 20)))) + (2.0 if c == "2" else 0.0)
        for c in labels
    ]
    name = "CharacterTrajectories"
    _write_ts(root / "ucr" / name / f"{name}_{split}.ts", name, series, labels)


def test_ucr_by_name_reads_cached_multivariate_unequal_sets_beside_shipped_ones(tmp_path):
    pytest.importorskip("aeon")
    _trajectories(tmp_path, 20, 0, "TRAIN")
    _trajectories(tmp_path, 10, 1, "TEST")
    bench = _build(
        "ucr_stream", root=str(tmp_path), datasets=["characterTrajectories", "gunpoint"]
    )  # names are matched case-insensitively; GunPoint ships inside aeon
    assert bench.experience_names == ["CharacterTrajectories", "GunPoint"]
    assert bench.features_per_experience == [3, 1] and bench.scenario_name == "task"
    x, y = _all(bench.scenario.train_stream[0])
    lengths = x[..., -1].sum(1)
    assert (
        len(x) == 20
        and lengths.min() >= 8
        and lengths.max() < 20
        and len(set(lengths.tolist())) > 3
    )
    assert x.shape[1] == 150  # GunPoint's length: one shape for the stream


def test_ucr_missing_unknown_corrupt_and_undownloadable_sets_are_one_line(tmp_path, monkeypatch):
    pytest.importorskip("aeon")
    with pytest.raises(DataError, match="clstm data fetch ucr Coffee") as err:
        _build("ucr_stream", root=str(tmp_path), datasets=["Coffee"])
    assert str(tmp_path / "ucr" / "Coffee") in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="'GunPiont' is not a UCR/UEA .*did you mean 'GunPoint'"):
        _build("ucr_stream", root=str(tmp_path), datasets=["GunPiont"])
    _trajectories(tmp_path, 20, 0, "TRAIN")
    test_file = tmp_path / "ucr" / "CharacterTrajectories" / "CharacterTrajectories_TEST.ts"
    test_file.write_text("@problemName CharacterTrajectories\n@data\n1,2,x:oops\n")
    with pytest.raises(DataError, match="CharacterTrajectories_TEST.ts is not a valid data file"):
        _build("ucr_stream", root=str(tmp_path), datasets=["CharacterTrajectories"])

    import aeon.datasets

    def offline(*args, **kwargs):
        raise ValueError("Could not download files for Coffee from Zenodo record 1: URLError")

    monkeypatch.setattr(aeon.datasets, "load_classification", offline)
    config = load_config(
        {"benchmark": {"name": "ucr_stream", "root": str(tmp_path), "datasets": ["Coffee"]}}
    ).benchmark
    with pytest.raises(DataError, match=r"could not download into .*Coffee \(Could not download"):
        benchmark_module("ucr_stream").build(config)


def _write_har(base, n_train: int, n_test: int) -> None:
    """The UCI-HAR folder layout with tiny signal tables (channel c of class k centred at k)."""
    from clstm.data.har import SIGNALS

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 6 + 1
        inertial = base / split / "Inertial Signals"
        inertial.mkdir(parents=True, exist_ok=True)
        for c, signal in enumerate(SIGNALS):
            table = rng.standard_normal((n, 128)) * 0.1 + labels[:, None] * (c + 1)
            np.savetxt(inertial / f"{signal}_{split}.txt", table, fmt="%.6e")
        np.savetxt(base / split / f"y_{split}.txt", labels, fmt="%d")


@pytest.fixture(scope="module")
def har_zip(tmp_path_factory):
    """``UCI HAR Dataset.zip`` as distributed (the dataset folder inside a zip)."""
    import shutil

    work = tmp_path_factory.mktemp("har")
    _write_har(work / "UCI HAR Dataset", 36, 18)
    archive = shutil.make_archive(str(work / "UCI HAR Dataset"), "zip", work, "UCI HAR Dataset")
    return work / archive


def test_har_reads_the_distributed_zip_class_incremental(har_zip, tmp_path):
    import shutil
    import zipfile

    (tmp_path / "uci_har").mkdir()
    outer = tmp_path / "uci_har" / "human+activity+recognition+using+smartphones.zip"
    with zipfile.ZipFile(outer, "w") as z:  # the UCI download wraps the dataset's own zip
        z.write(har_zip, "UCI HAR Dataset.zip")
    bench = _build("har", root=str(tmp_path), class_order="preset")
    assert bench.scenario_name == "class" and bench.experience_names == [
        "classes 0,1", "classes 2,3", "classes 4,5",
    ]  # fmt: skip
    x, y = _all(bench.scenario.train_stream[2])
    assert x.shape[1:] == (128, 10) and sorted(set(y.tolist())) == [4, 5]
    assert len(bench.scenario.test_stream[0].dataset) == 6  # 18 test windows / 3 experiences
    from clstm.data import har

    shuffled = har.build(
        load_config(
            {"benchmark": {"name": "har", "root": str(tmp_path), "class_order": "shuffled"}}
        ).benchmark,
        run_seed=3,
    )
    order = np.random.default_rng(3).permutation(6).tolist()
    assert shuffled.experience_names[0] == "classes " + ",".join(map(str, sorted(order[:2])))
    shutil.rmtree(tmp_path / "uci_har" / "UCI HAR Dataset")
    sums = (tmp_path / "uci_har" / "SHA256SUMS").read_text()  # recorded when first extracted
    assert "UCI HAR Dataset.zip" in sums and "human+activity" in sums
    (tmp_path / "uci_har" / "UCI HAR Dataset.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"UCI HAR Dataset.zip is not the file first used"):
        _build("har", root=str(tmp_path), class_order="preset")  # changed since: refused
    (tmp_path / "uci_har" / "SHA256SUMS").unlink()  # a damaged archive never used before
    with pytest.raises(DataError, match=r"UCI HAR Dataset.zip is not a valid data file"):
        _build("har", root=str(tmp_path), class_order="preset")
    assert not list((tmp_path / "uci_har").glob(".extract-*"))  # nothing half-extracted left


def test_har_missing_files_name_the_folder(tmp_path):
    with pytest.raises(
        DataError, match=r"UCI-HAR: missing .* in .*uci_har; run `clstm data fetch har`"
    ):
        _build("har", root=str(tmp_path))


def test_har_class_order_shuffled_per_run_seed_through_the_runner(har_zip, tmp_path):
    import json
    import shutil

    from clstm import run_experiment

    (tmp_path / "data" / "uci_har").mkdir(parents=True)
    shutil.copy(har_zip, tmp_path / "data" / "uci_har" / "UCI HAR Dataset.zip")
    config = {
        "name": "har", "device": "cpu",
        "benchmark": {"name": "har", "root": str(tmp_path / "data"), "class_order": "shuffled"},
        "model": {"hidden_size": 4}, "train": {"epochs": 1, "batch_size": 16},
    }  # fmt: skip
    names = []
    for seed in (0, 1):
        run_experiment({**config, "seed": seed}, out=tmp_path / "out")
        meta = json.loads(
            (tmp_path / "out" / "har" / "naive" / f"seed{seed}" / "metrics.json").read_text()
        )
        names.append(meta["experience_names"])
    assert names[0] != names[1]  # a new class order per run, both seeds under one run name


def test_data_list_and_fetch_on_the_command_line(mnist_root, tmp_path):
    root, _ = mnist_root
    env = {**__import__("os").environ, "CLSTM_DATA": str(root)}
    clstm = [sys.executable, "-m", "clstm.cli"]
    listed = subprocess.run([*clstm, "data", "list"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and f"data root: {root}" in listed.stdout
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "cached" in rows["smnist"] and "[class, task]" in rows["smnist"]
    assert "download" in rows["har"] and "clstm data fetch har" in rows["har"]
    assert "offline" in rows["mnist1d"] and "offline" in rows["seq_digits"]
    fetched = subprocess.run(
        [*clstm, "data", "fetch", "pmnist", "mnist1d"], capture_output=True, text=True, env=env
    )
    assert fetched.returncode == 0, fetched.stderr
    assert (
        f"pmnist: {root / 'MNIST' / 'raw'}" in fetched.stdout
        and "mnist1d: nothing" in fetched.stdout
    )
    wrong = subprocess.run(
        [*clstm, "data", "fetch", "hra"], capture_output=True, text=True, env=env
    )
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "cannot fetch 'hra' (did you mean 'har'?)" in wrong.stderr
    listing = subprocess.run([*clstm, "list"], capture_output=True, text=True, env=env)
    smnist = next(line for line in listing.stdout.splitlines() if line.strip().startswith("smnist"))
    assert "[class, task; sequence]" in smnist and "(cached:" in smnist
    copy = next(line for line in listing.stdout.splitlines() if line.strip().startswith("copy "))
    assert "[task, domain; per_step_bits]" in copy and "(offline)" in copy
    forecast = next(line for line in listing.stdout.splitlines() if "forecast_regimes" in line)
    assert "[domain, task; regression]" in forecast


def test_uwave_stacks_the_three_ucr_axes_with_tscils_protocol(tmp_path):
    pytest.importorskip("aeon")
    from clstm.data.uwave import AXES

    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", 40), ("TEST", 16)):
        labels = [str(i % 8 + 1) for i in range(n)]
        for a, axis in enumerate(AXES):  # axis a of gesture k centred at k + 10 a
            series = [rng.standard_normal((1, 315)) * 0.1 + int(c) + 10 * a for c in labels]
            _write_ts(tmp_path / "ucr" / axis / f"{axis}_{split}.ts", axis, series, labels)
    bench = _build("uwave", root=str(tmp_path), class_order="preset")
    assert bench.experience_names == ["classes 0,2", "classes 1,3", "classes 4,6", "classes 5,7"]
    x, y = _all(bench.scenario.train_stream[0])
    assert (
        x.shape[1:] == (315, 4) and sum(len(e.dataset) for e in bench.scenario.train_stream) == 36
    )
    assert sum(len(e.dataset) for e in bench.scenario.test_stream) == 16  # 10% held out of train
    # the three channels are the three axes of one recording
    labels_z = [
        int(s.split(":")[-1])
        for s in (tmp_path / "ucr" / AXES[2] / f"{AXES[2]}_TEST.ts").read_text().splitlines()[8:]
    ]
    (tmp_path / "ucr" / AXES[2] / f"{AXES[2]}_TEST.ts").write_text(
        (tmp_path / "ucr" / AXES[2] / f"{AXES[2]}_TEST.ts").read_text().replace(":1\n", ":2\n", 1)
    )
    assert labels_z[0] == 1
    with pytest.raises(DataError, match="do not hold the same recordings"):
        _build("uwave", root=str(tmp_path))


def test_dsa_reads_the_uci_tree_drops_activity_16_and_keeps_tuning_tasks_apart(tmp_path):
    import shutil

    rng = np.random.default_rng(0)
    work = tmp_path / "work"
    for activity in range(1, 20):
        for subject in (1, 2):
            for segment in range(1, 5):
                path = work / "data" / f"a{activity:02d}" / f"p{subject}" / f"s{segment:02d}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savetxt(
                    path, rng.standard_normal((125, 45)) + activity, delimiter=",", fmt="%.4f"
                )
    (tmp_path / "root" / "dsa").mkdir(parents=True)
    shutil.make_archive(
        str(tmp_path / "root" / "dsa" / "daily+and+sports+activities"), "zip", work, "data"
    )
    exp = _build("dsa", root=str(tmp_path / "root"), class_order="preset")
    assert exp.n_experiences == 6 and exp.experience_names[0] == "classes 6,7"  # tasks 3..8
    val = _build("dsa", root=str(tmp_path / "root"), class_order="preset", stream="val")
    assert val.experience_names == ["classes 0,1", "classes 2,3", "classes 4,5"]
    x, y = _all(exp.scenario.test_stream[5])
    assert x.shape[1:] == (125, 46) and sorted(set(y.tolist())) == [10, 11]  # 12 classes, mapped
    assert exp.label_maps[0]["16"] == 10
    assert len(x) == 4  # 8 segments per class, 25% for testing (stratified)
    # activity 16 is dropped: label 15 is activity 17 (centred at 17 before standardising)
    every = _build(
        "dsa", root=str(tmp_path / "root"), class_order="preset", stream="all", standardize=False
    )
    x15, y15 = _all(every.scenario.train_stream[7])
    assert abs(float(x15[y15 == 15][..., :45].mean()) - 17) < 0.2
    (tmp_path / "root" / "dsa" / "data" / "a19" / "p2" / "s04.txt").write_text("1,2\n")
    with pytest.raises(DataError, match=r"s04.txt is not a valid data file \(1 x 2 values"):
        _build("dsa", root=str(tmp_path / "root"))


def test_wisdm_windows_of_200_steps_from_the_raw_phone_files(tmp_path):
    import shutil
    import zipfile

    from clstm.data.wisdm import CODES, windows

    np.testing.assert_array_equal(windows(np.ones((450, 3)))[2, 49:51, 0], [1.0, 0.0])  # padded
    work = tmp_path / "work"
    accel = work / "wisdm-dataset" / "raw" / "phone" / "accel"
    accel.mkdir(parents=True)
    for subject in (1600, 1601):
        lines = []
        for k, code in enumerate(CODES):
            for t in range(450):  # 3 windows per subject and activity, the last partial
                lines.append(f"{subject},{code},{t},{k + 0.1},{-k},{t % 7};")
        (accel / f"data_{subject}_accel_phone.txt").write_text("\n".join(lines) + "\n")
    inner = shutil.make_archive(str(tmp_path / "wisdm-dataset"), "zip", work, "wisdm-dataset")
    (tmp_path / "root" / "wisdm").mkdir(parents=True)
    outer = (
        tmp_path
        / "root"
        / "wisdm"
        / "wisdm+smartphone+and+smartwatch+activity+and+biometrics+dataset.zip"
    )
    with zipfile.ZipFile(outer, "w") as z:
        z.write(inner, "wisdm-dataset.zip")
    bench = _build(
        "wisdm", root=str(tmp_path / "root"), class_order="preset", stream="all", standardize=False
    )
    assert bench.n_experiences == 9
    total = sum(
        len(e.dataset) for s in (bench.scenario.train_stream, bench.scenario.test_stream) for e in s
    )
    assert total == 18 * 2 * 3
    x, y = _all(bench.scenario.train_stream[0])
    assert x.shape[1:] == (200, 4)
    assert torch.allclose(x[y == 1][:, :10, 0], torch.tensor(1.1))  # class B: x = 1.1
    with pytest.raises(DataError, match="WISDM: missing"):
        _build("wisdm", root=str(tmp_path / "empty"))


def test_the_shipped_published_values_match_the_shipped_protocols():
    """experiments/published/values.yaml compares each entry with the runs of its experiment
    file: the file exists, its strategy is the entry's run, and its config has the entry's
    values, so a renamed run or a changed protocol cannot leave the comparison silently empty."""
    from clstm.config import load_config
    from clstm.report.published import load_published
    from clstm.run.rundir import flatten

    entries = load_published(ROOT / "experiments" / "published" / "values.yaml")
    assert {e.experiment for e in entries} >= {
        "ehret2021_permuted_copy_ewc", "ehret2021_permuted_copy_si", "ehret2021_padded_copy"
    }  # fmt: skip
    for entry in entries:
        config = load_config(ROOT / "experiments" / f"{entry.experiment}.yaml")
        assert config.name == entry.experiment and config.strategy.name == entry.run
        flat = flatten(dataclasses.asdict(config))
        assert {k: flat[k] for k in entry.config} == entry.config, entry.experiment
