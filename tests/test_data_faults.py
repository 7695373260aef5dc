"""The data layer under hostile conditions: roots that are files or not writable, corrupt and
truncated files in every official format (a fuzz test), downloads that hang or fail, shared
caches, and the messages that say what is missing. Every fault is one line (a DataError; exit 2
on the command line), never a traceback, a partial file or a hang."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import socket
import stat
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_literature import _images, _write_har, _write_ts

from clstm import cli
from clstm.data import cache, mnist
from clstm.errors import DataError


def _cli(args, capsys) -> tuple[int, str]:
    code = cli.main(args)
    return code, capsys.readouterr().err.strip()


def _one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text


# --------------------------------------------------------------------------------------------------
# Roots that cannot hold the data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["har", "dsa", "wisdm", "smnist", "uwave"])
def test_a_data_root_that_is_a_file_is_one_line_naming_it(name, tmp_path, capsys):
    root = tmp_path / "a file"
    root.write_text("not a folder")
    code, err = _cli(["data", "fetch", name, "--root", str(root), "--quiet"], capsys)
    assert code == 2 and _one_line(err), err
    assert f"{root} is a file, not a folder" in err


def test_a_run_on_a_root_that_is_a_file_exits_2_with_the_hint(tmp_path, capsys):
    root = tmp_path / "a file"
    root.write_text("")
    config = tmp_path / "har.yaml"
    config.write_text(f"benchmark: {{name: har, root: '{root}'}}\n")
    code, err = _cli(["run", str(config), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 2 and _one_line(err) and "is a file, not a folder" in err
    assert not (tmp_path / "out").exists()


def test_a_data_root_without_write_permission_is_one_line(tmp_path, monkeypatch, capsys):
    real = Path.mkdir

    def refused(self, *args, **kwargs):  # as for a non-root user on a read-only shared root
        if str(self).startswith(str(tmp_path / "shared")):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused)
    code, err = _cli(["data", "fetch", "har", "--root", str(tmp_path / "shared")], capsys)
    assert code == 2 and _one_line(err) and "permission denied for" in err
    assert "choose a data root you can write to" in err


def test_an_empty_root_is_refused_not_read_as_the_default(tmp_path, capsys):
    for args in (["data", "list", "--root", ""], ["data", "fetch", "har", "--root", ""]):
        code, err = _cli(args, capsys)
        assert code == 2 and "the data root is empty" in err
    config = tmp_path / "e.yaml"
    config.write_text("benchmark: {name: smnist, root: ''}\n")
    code, err = _cli(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "the data root is empty" in err


# --------------------------------------------------------------------------------------------------
# Decompression: no traceback, no temporary file, the user's umask
# --------------------------------------------------------------------------------------------------


def _mnist_gz(root: Path) -> Path:
    (xtr, ytr), (xte, yte) = _images(20, 0), _images(10, 1)
    images, labels = {"train": xtr, "test": xte}, {"train": ytr, "test": yte}
    return mnist.write_files(root, images, labels, gz=True)


def test_a_corrupt_gz_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys):
    raw = _mnist_gz(tmp_path)
    data = (raw / "t10k-images-idx3-ubyte.gz").read_bytes()
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(data[:30] + bytes(64) + data[94:])  # zlib
    for _ in range(2):  # every try
        with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is not a valid data file"):
            mnist.load(str(tmp_path), download=False)
    assert not [p.name for p in raw.iterdir() if p.name.startswith(".")], list(raw.iterdir())
    config = tmp_path / "s.yaml"
    config.write_text(f"benchmark: {{name: smnist, root: '{tmp_path}', download: false}}\n")
    code, err = _cli(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and _one_line(err) and "not a valid data file" in err


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_decompressed_and_recorded_files_follow_the_umask(umask, tmp_path):
    raw = _mnist_gz(tmp_path)
    old = os.umask(umask)
    try:
        mnist.load(str(tmp_path), download=False)
    finally:
        os.umask(old)
    for path in [raw / "train-images-idx3-ubyte", raw / cache.SUMS]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_every_archive_is_recorded_then_verified(tmp_path):
    raw = _mnist_gz(tmp_path)
    mnist.load(str(tmp_path), download=False)
    sums = (raw / cache.SUMS).read_text().splitlines()
    assert len(sums) == 4 and all(len(line.split("  ")[0]) == 64 for line in sums)
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes())[:-1] + b"\x07"))  # changed
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz is not the file first used"):
        mnist.load(str(tmp_path), download=False)


# --------------------------------------------------------------------------------------------------
# Downloads: no hang, a progress line on a terminal, checksums
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a stuck proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in held:
        connection.close()


def test_a_download_through_a_proxy_that_never_answers_gives_up_in_seconds(
    silent_server, tmp_path, monkeypatch
):
    monkeypatch.setattr(cache, "TIMEOUT", 0.3)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    proxy = f"http://user:secret@127.0.0.1:{silent_server}"
    for name in ("http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    target = tmp_path / "root" / "uci_har" / "archive.zip"
    started = time.monotonic()
    with pytest.raises(DataError) as err:
        cache.download_file("https://archive.example.org/archive.zip", target, "UCI-HAR", "har")
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert _one_line(message) and "could not download https://archive.example.org/archive.zip" in (
        message
    )
    assert f"https_proxy=http://***@127.0.0.1:{silent_server}" in message
    assert "secret" not in message and "after 2 tries" in message
    assert not list(target.parent.iterdir())  # no .part left


def test_clstm_data_fetch_through_a_stuck_proxy_ends_with_one_line(silent_server, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "CLSTM_DOWNLOAD_TIMEOUT": "0.5",
           "https_proxy": f"http://127.0.0.1:{silent_server}"}  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "clstm.cli", "data", "fetch", "har", "--root", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert done.returncode == 2 and _one_line(done.stderr.strip()), done.stderr
    assert "could not download https://archive.ics.uci.edu/" in done.stderr


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server of the files in a folder; yields (base URL, folder)."""
    import http.server

    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    server.shutdown()


def test_a_download_shows_progress_on_a_terminal_only_and_checks_the_md5(
    file_server, tmp_path, monkeypatch, capsys
):
    import hashlib
    import sys

    url, folder = file_server
    payload = os.urandom(300_000)
    (folder / "data.bin").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(cache._Progress, "add", _every_block(cache._Progress.add))
    cache.download_file(f"{url}data.bin", tmp_path / "a" / "data.bin", "X", "x", md5=md5)
    assert (tmp_path / "a" / "data.bin").read_bytes() == payload
    assert "downloading data.bin:" in capsys.readouterr().err
    with cache.quiet():
        cache.download_file(f"{url}data.bin", tmp_path / "b" / "data.bin", "X", "x")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(time, "sleep", lambda s: None)
    with pytest.raises(DataError, match="its MD5 is not the published 0123"):
        cache.download_file(f"{url}data.bin", tmp_path / "c" / "data.bin", "X", "x", md5="0123")
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def _every_block(add):
    def shown(self, n):
        self.shown = 0.0  # print at every block (the real one prints five times a second)
        add(self, n)

    return shown


def test_ctrl_c_during_a_runs_download_says_nothing_was_written(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist, "download_file", interrupted)
    config = tmp_path / "s.yaml"
    config.write_text(f"benchmark: {{name: smnist, root: '{tmp_path / 'data'}'}}\n")
    code, err = _cli(["run", str(config), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and "the run had not started: nothing was written" in err
    assert "--resume" not in err and not (tmp_path / "out" / "s").exists()


def test_a_second_ctrl_c_exits_1_as_documented(monkeypatch, capsys):
    def twice(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_main", twice)
    assert cli.main(["list"]) == 1
    assert "interrupted by Ctrl-C" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Messages that name what is missing
# --------------------------------------------------------------------------------------------------


def test_a_har_folder_missing_one_file_names_that_file(tmp_path):
    base = tmp_path / "uci_har" / "UCI HAR Dataset"
    _write_har(base, 12, 6)
    (base / "test" / "y_test.txt").unlink()
    har_line = next(line for line in cli_output_lines(tmp_path) if line.split()[0] == "har")
    assert "incomplete" in har_line and "y_test.txt" in har_line, har_line  # not "cached"
    from clstm.data import har

    with pytest.raises(DataError) as err:
        har.load(str(tmp_path), download=False)
    message = str(err.value)
    assert "missing UCI HAR Dataset/test/y_test.txt in" in message, message
    assert "train" not in message.split(" in ")[0]


def cli_output_lines(root: Path) -> list[str]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        cli.main(["data", "list", "--root", str(root)])
    return buffer.getvalue().splitlines()[1:]


def test_ucr_messages_name_only_the_missing_split_and_the_empty_file(tmp_path):
    pytest.importorskip("aeon")
    from clstm.data import ucr

    name = "CharacterTrajectories"
    rng = np.random.default_rng(0)
    _write_ts(tmp_path / "ucr" / name / f"{name}_TRAIN.ts", name,
              [rng.standard_normal((3, 9)) for _ in range(4)], ["1", "2"] * 2)  # fmt: skip
    with pytest.raises(DataError) as err:
        ucr.load(name, "TRAIN", str(tmp_path), download=False)
    assert f"missing {name}_TEST.ts in" in str(err.value) and "_TRAIN" not in str(err.value)
    empty = tmp_path / "ucr" / name / f"{name}_TEST.ts"
    empty.write_text(f"@problemName {name}\n@dimensions 3\n@classLabel true 1 2\n@data\n")
    with pytest.raises(DataError, match=f"{empty} is not a valid data file"):
        ucr.load(name, "TEST", str(tmp_path), download=False)


def test_pmnist_messages_say_to_fetch_pmnist(tmp_path):
    from clstm.config import load_config
    from clstm.data import pmnist

    config = load_config({"benchmark": {"name": "pmnist", "root": str(tmp_path),
                                        "download": False}}).benchmark  # fmt: skip
    with pytest.raises(DataError, match="clstm data fetch pmnist"):
        pmnist.build(config)


@pytest.mark.parametrize("option", ["n_experiences=100000000", "width=100000000"])
def test_the_memory_guard_names_the_size_that_is_huge(option):
    from clstm.config import ConfigError, load_config

    key, value = option.split("=")
    with pytest.raises(ConfigError, match=f"{key} {value}") as err:
        load_config({"benchmark": {"name": "copy"}}, [f"benchmark.{option}"])
    assert f"{key}" in str(err.value).split("; ")[-1]


# --------------------------------------------------------------------------------------------------
# Fuzz: every loader on random truncations and byte flips of its official format
# --------------------------------------------------------------------------------------------------


def _zip_tree(source: Path, top: str, archive: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted((source / top).rglob("*")):
            z.write(path, path.relative_to(source))


def _fixture(kind: str, root: Path) -> list[Path]:
    """Write the official files of one loader under ``root``; the files to corrupt."""
    from clstm.data import dsa, wisdm

    work = root.parent / f"{root.name}-work"
    if kind == "mnist-gz":
        raw = _mnist_gz(root)
        return sorted(raw.glob("*.gz"))
    if kind == "mnist-idx":
        (xtr, ytr), (xte, yte) = _images(20, 0), _images(10, 1)
        raw = mnist.write_files(root, {"train": xtr, "test": xte}, {"train": ytr, "test": yte})
        return sorted(raw.glob("*-ubyte"))
    if kind == "har-folder":  # extracted: the parsers read the corrupted tables themselves
        _write_har(root / "uci_har" / "UCI HAR Dataset", 12, 6)
        return sorted((root / "uci_har").rglob("*.txt"))
    if kind == "dsa-folder":
        _fixture("dsa", root)
        shutil.rmtree(root / "dsa")
        shutil.copytree(work / "data", root / "dsa" / "data")
        return sorted((root / "dsa").rglob("*.txt"))
    if kind == "wisdm-folder":
        _fixture("wisdm", root)
        shutil.rmtree(root / "wisdm")
        shutil.copytree(work / "wisdm-dataset", root / "wisdm" / "wisdm-dataset")
        return sorted((root / "wisdm").rglob("*.txt"))
    if kind == "har":
        _write_har(work / "UCI HAR Dataset", 12, 6)
        _zip_tree(work, "UCI HAR Dataset", root / "uci_har" / "UCI HAR Dataset.zip")
        return [root / "uci_har" / "UCI HAR Dataset.zip"]
    if kind == "dsa":
        rng = np.random.default_rng(0)
        for activity in range(1, 20):
            path = work / "data" / f"a{activity:02d}" / "p1" / "s01.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savetxt(path, rng.standard_normal((125, 45)), delimiter=",", fmt="%.3f")
        _zip_tree(work, "data", root / "dsa" / dsa.ZIP)
        return [root / "dsa" / dsa.ZIP]
    if kind == "wisdm":
        accel = work / wisdm.ACCEL
        accel.mkdir(parents=True)
        lines = [f"1600,{c},{t},{k},{-k},{t % 7};" for k, c in enumerate(wisdm.CODES)
                 for t in range(30)]  # fmt: skip
        (accel / "data_1600_accel_phone.txt").write_text("\n".join(lines) + "\n")
        _zip_tree(work, "wisdm-dataset", root / "wisdm" / wisdm.INNER_ZIP)
        return [root / "wisdm" / wisdm.INNER_ZIP]
    if kind == "ucr":
        name = "CharacterTrajectories"
        rng = np.random.default_rng(0)
        for split in ("TRAIN", "TEST"):
            series = [rng.standard_normal((3, int(rng.integers(5, 9)))) for _ in range(6)]
            _write_ts(root / "ucr" / name / f"{name}_{split}.ts", name, series, ["1", "2"] * 3)
        return sorted((root / "ucr" / name).glob("*.ts"))
    if kind == "npz":
        rng = np.random.default_rng(0)
        path = root / "one.npz"
        root.mkdir(parents=True, exist_ok=True)
        np.savez(path, X_train=rng.standard_normal((6, 5, 2)), y_train=np.arange(6) % 2,
                 X_test=rng.standard_normal((4, 5, 2)), y_test=np.arange(4) % 2)  # fmt: skip
        return [path]
    raise AssertionError(kind)


LOADERS = ["mnist-gz", "mnist-idx", "har", "har-folder", "dsa", "dsa-folder", "wisdm",
           "wisdm-folder", "ucr", "npz"]  # fmt: skip


@pytest.mark.parametrize("kind", LOADERS)
def test_fuzz_every_corruption_loads_or_is_one_dataerror_line(kind, tmp_path):
    if kind == "ucr":
        pytest.importorskip("aeon")
    pristine = tmp_path / "pristine"
    files = _fixture(kind, pristine)
    rng = np.random.default_rng(LOADERS.index(kind))
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(48):
        root = tmp_path / f"trial{trial}"
        shutil.copytree(pristine, root)
        victim = root / rng.choice(files).relative_to(pristine)
        data = bytearray(victim.read_bytes())
        if trial % 2 == 0:  # a truncation
            del data[int(rng.integers(0, len(data))) :]
        else:  # a few flipped bytes
            for at in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
                data[at] ^= int(rng.integers(1, 256))
        victim.write_bytes(bytes(data))
        try:
            _load(kind, root)
            outcomes["loaded"] += 1
        except DataError as exc:
            assert _one_line(str(exc)), (trial, str(exc))
            outcomes["refused"] += 1
        leftovers = [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".part"))
                     or p.name.startswith(".extract-")]  # fmt: skip
        assert not leftovers, (trial, leftovers)
    assert outcomes["refused"] >= 16, outcomes  # most corruptions are caught, none leak


def _load(kind: str, root: Path):
    """Load the fixture (maybe corrupted) under ``root`` as its benchmark does."""
    from clstm.data import dsa, har, npz, ucr, wisdm

    if kind.startswith("mnist"):
        return mnist.load(str(root), download=False)
    if kind == "ucr":
        return [ucr.load("CharacterTrajectories", s, str(root), False) for s in ("TRAIN", "TEST")]
    if kind == "npz":
        return npz.load(root / "one.npz")
    return {"har": har, "dsa": dsa, "wisdm": wisdm}[kind.split("-")[0]].load(str(root), False)
