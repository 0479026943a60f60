"""mnist_course.distributed: shards, and a two-process CPU run that equals a one-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from mnist_course import distributed
from mnist_course.checkpoint import read_checkpoint
from mnist_course.data import TensorData
from mnist_course.distributed import DDPSettings, ShardLoader, check_new_run, process_device, train_ddp
from mnist_course.errors import CheckpointError, DataError, InputError
from mnist_course.models import LeNet5


def shard_batches(n: int, batch_size: int, world_size: int, epoch: int) -> list[list[list[int]]]:
    """Each rank's batches of example indices (labels carry the index)."""
    data = TensorData(torch.zeros(n, 1, 28, 28), torch.arange(n))
    loaders = [ShardLoader(data, batch_size, rank=r, world_size=world_size, seed=3) for r in range(world_size)]
    for loader in loaders:
        loader.set_epoch(epoch)
    return [[labels.tolist() for _, labels in loader] for loader in loaders]


def test_the_shards_of_each_global_batch_are_the_single_process_batch():
    single = shard_batches(96, 32, 1, epoch=1)[0]
    two = shard_batches(96, 16, 2, epoch=1)
    four = shard_batches(96, 8, 4, epoch=1)
    for b, whole in enumerate(single):
        assert sorted(two[0][b] + two[1][b]) == sorted(whole)
        assert sorted(i for rank in four for i in rank[b]) == sorted(whole)
    assert sorted(i for batch in single for i in batch) == list(range(96)), "every example once per epoch"


def test_set_epoch_reshuffles_the_same_way_everywhere():
    assert shard_batches(64, 8, 2, epoch=1) == shard_batches(64, 8, 2, epoch=1)
    assert shard_batches(64, 8, 2, epoch=1) != shard_batches(64, 8, 2, epoch=2)
    data = TensorData(torch.zeros(10, 1, 28, 28), torch.arange(10))
    assert len(ShardLoader(data, 2, rank=0, world_size=4)) == 2  # 3 indices each (padded), in batches of 2


def test_a_process_gets_its_own_gpu_or_the_cpu(monkeypatch):
    if not torch.cuda.is_available():
        assert process_device(1) == torch.device("cpu")
    monkeypatch.setattr(distributed, "pick_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert process_device(0) == torch.device("cuda", 0)
    with pytest.raises(InputError, match=r'1 GPU\(s\)\): start at most that many .* CUDA_VISIBLE_DEVICES=""'):
        process_device(1)


def test_train_ddp_outside_torchrun_says_how_to_start_it(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(InputError, match="torchrun --standalone --nproc-per-node 2 -m mnist_course ddp"):
        train_ddp(DDPSettings("never.ckpt"))


def test_an_existing_checkpoint_is_kept_unless_resumed_or_overwritten(tmp_path):
    path = tmp_path / "ddp.ckpt"
    path.write_bytes(b"a previous run")
    with pytest.raises(DataError, match="--resume to continue it, or --overwrite"):
        check_new_run(DDPSettings(str(path)), resume=False, overwrite=False)
    check_new_run(DDPSettings(str(path)), resume=True, overwrite=False)
    check_new_run(DDPSettings(str(path)), resume=False, overwrite=True)
    assert path.read_bytes() == b"a previous run"


def torchrun(tmp_path, processes: int, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    return subprocess.run(
        [*command, "-m", "mnist_course", "ddp", "--limit", "1024", "--epochs", "2", *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""},  # CPU processes, also beside a GPU
    )


def train_in_this_process(monkeypatch, settings: DDPSettings):
    """A one-process run without torchrun: this process gets the environment torchrun would give it."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(distributed, "pick_device", lambda: torch.device("cpu"))  # a CPU process, like torchrun's
    return train_ddp(settings)


@pytest.mark.slow
def test_two_processes_end_with_the_weights_of_one(tmp_path, mnist_root, monkeypatch):
    """Same global batch (2 x 32 = 64), data order and initial weights: the same training.

    In float64, so that the different order of summing gradients (about 1e-16 relative) cannot
    grow into a visible difference, as float32's (1e-7) can over many steps. The two processes are
    started by torchrun through the command line; the one process runs here, in pytest's.
    """
    two = torchrun(tmp_path, 2, "--checkpoint", "two.ckpt", "--batch-size", 32, "--float64")
    assert two.returncode == 0, two.stderr[-3000:]
    one = DDPSettings(str(tmp_path / "one.ckpt"), epochs=2, batch_size=64, train_limit=1024, float64=True)
    history = train_in_this_process(monkeypatch, one)
    assert [e.epoch for e in history.epochs] == [1, 2] and not torch.distributed.is_initialized()
    assert [line.split(":")[0] for line in two.stdout.splitlines()] == ["epoch 1/2", "epoch 2/2"], "rank 0 prints"
    a, b = read_checkpoint(tmp_path / "two.ckpt"), read_checkpoint(tmp_path / "one.ckpt")
    assert a["model_name"] == "lenet5" and a["epoch"] == b["epoch"] == 2
    assert a["extra"]["settings"]["global_batch"] == b["extra"]["settings"]["global_batch"] == 64
    for name, weights in a["model"].items():
        assert weights.dtype == torch.float64
        torch.testing.assert_close(weights, b["model"][name], rtol=0, atol=1e-12)

    again = ("--checkpoint", "two.ckpt", "--resume", "--float64")
    resumed = torchrun(tmp_path, 2, *again, "--batch-size", 32, "--epochs", 3)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.splitlines()[0] == "continuing from two.ckpt: 2 of 3 epochs done"
    assert [line.split(":")[0] for line in resumed.stdout.splitlines()[1:]] == ["epoch 3/3"]
    # a different global batch is refused before anything is loaded (what `--resume` runs first)
    model = LeNet5().double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    other = DDPSettings(str(tmp_path / "two.ckpt"), epochs=3, batch_size=16, train_limit=1024, float64=True)
    with pytest.raises(CheckpointError, match=r"other settings \(batch_size, global_batch\)"):
        distributed._resume(other, model, optimizer, 2, torch.device("cpu"))
    same = DDPSettings(str(tmp_path / "two.ckpt"), epochs=3, batch_size=32, train_limit=1024, float64=True)
    done, history = distributed._resume(same, model, optimizer, 2, torch.device("cpu"))
    assert done == 3 and [e.epoch for e in history.epochs] == [1, 2, 3]
