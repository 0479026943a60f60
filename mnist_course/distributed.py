"""Data-parallel training on several processes with ``torch.distributed`` (chapter 13).

``torchrun`` starts one process per device and tells each its place (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``)::

    torchrun --standalone --nproc-per-node 2 -m mnist_course ddp --checkpoint ddp.ckpt --epochs 2

Every process holds a full copy of the model and trains on its own shard of each *global* batch
(:class:`ShardLoader`, over ``DistributedSampler``); ``DistributedDataParallel`` averages the
gradients of all processes (an all-reduce) during ``backward()``, so every copy takes the same
optimizer step and the copies stay identical. The loop itself is chapter 6's
:func:`~mnist_course.train.train_one_epoch`. Only rank 0 prints and writes the checkpoint, of
the plain model (``ddp.module``), so it loads into a model built without ``torch.distributed``.

``--standalone`` lets torchrun pick a free port on this machine. To restart failed processes
automatically (``--max-restarts N`` with ``--resume``), also set
``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``: with gloo, a restarted group can otherwise read the
previous attempt's addresses from the store torchrun shares with it, and fail to connect
(pytorch/pytorch#135712).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from mnist_course.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from mnist_course.data import TensorData, load_tensors
from mnist_course.device import pick_device, seed_everything
from mnist_course.download import check_output_path, ensure_mnist
from mnist_course.errors import CheckpointError, InputError
from mnist_course.evaluate import evaluate
from mnist_course.history import EpochRecord, History
from mnist_course.models import create_model
from mnist_course.train import train_one_epoch


@dataclass(frozen=True)
class DDPSettings:
    """One data-parallel run (chapter 13).

    Args:
        checkpoint: where rank 0 writes the model after every epoch.
        model: a registry name (``python -m mnist_course models``).
        epochs: epochs in all (a resumed run continues up to this).
        batch_size: examples per process per step; the global batch is this times the world size.
        lr: the learning rate of SGD with momentum 0.9. (SGD, not Adam: its step is proportional to
            the gradient, so the last-digit differences of summing gradients in another order stay
            that small, and runs on different numbers of processes can be compared.)
        train_limit: the first ``train_limit`` training images (all 60,000 by default).
        seed: the initial weights and the shuffling order, the same in every process.
        float64: compute in double precision, where rounding is some 500 million times smaller,
            to check that runs on different numbers of processes compute the same thing.
    """

    checkpoint: str
    model: str = "lenet5"
    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.05
    train_limit: int | None = None
    seed: int = 0
    float64: bool = False


class ShardLoader:
    """This process's shard of every global batch, from in-memory tensors (chapter 13).

    ``DistributedSampler`` shuffles the indices of all examples with the same seed in every
    process (reshuffled by :meth:`set_epoch`) and gives process ``rank`` every ``world_size``-th
    of them; this loader cuts that list into batches of ``batch_size``. Global batch ``b`` (the
    union of all processes' batch ``b``) is then positions ``b * B * W`` to ``(b + 1) * B * W``
    of the shuffled order, whatever the number of processes ``W``.

    Args:
        data: the whole training set.
        batch_size: examples per batch in this process.
        rank, world_size: this process's place among all of them.
        seed: the shuffling seed, the same in every process.
    """

    def __init__(self, data: TensorData, batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0):
        self.data, self.batch_size = data, batch_size
        self.sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (the same order in every process); call before each epoch."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = torch.tensor(list(self.sampler))
        for start in range(0, len(indices), self.batch_size):
            batch = self.data[indices[start : start + self.batch_size]]
            yield batch.images, batch.labels


def process_device(local_rank: int) -> torch.device:
    """One GPU per process where there are GPUs (``cuda:LOCAL_RANK``), else the CPU (chapter 13).

    The book's device rule (:func:`~mnist_course.device.pick_device`) per process: Apple's MPS
    has no ``torch.distributed`` backend, so it counts as a CPU here.

    Args:
        local_rank: the process's rank on this machine (``LOCAL_RANK``, set by torchrun).

    Returns:
        torch.device: ``cuda:local_rank`` or the CPU. :class:`~mnist_course.errors.InputError` if
        there are GPUs but fewer than processes.
    """
    if pick_device().type != "cuda":
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise InputError(
            f"process {local_rank} has no GPU of its own ({torch.cuda.device_count()} GPU(s)): start at most that many "
            'processes per machine, or set CUDA_VISIBLE_DEVICES="" to train on CPU processes'
        )
    return torch.device("cuda", local_rank)


def start_process_group() -> tuple[int, int, torch.device]:
    """Join the group ``torchrun`` set up: ``nccl`` with GPUs, ``gloo`` on CPUs (chapter 13).

    Returns:
        tuple: ``(rank, world_size, device)`` of this process.
    """
    if "RANK" not in os.environ:
        raise InputError(
            "start this with torchrun, e.g. `torchrun --standalone --nproc-per-node 2 -m mnist_course ddp ...`"
        )
    device = process_device(int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _as(data: TensorData, dtype: torch.dtype) -> TensorData:
    return TensorData(data.images.to(dtype), data.labels)


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sums of ``values`` over all processes (an all-reduce), e.g. loss totals and counts."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)  # every process gets the sum over all of them
    return t.tolist()


def _resume(settings: DDPSettings, model, optimizer, world_size: int, device) -> tuple[int, History]:
    """Continue from the checkpoint if it exists: every process loads rank 0's file."""
    path = Path(settings.checkpoint)
    first = dist.is_initialized() and dist.get_rank() == 0
    if not path.exists():
        if first:
            print(f"no checkpoint at {path} yet: starting at epoch 1", flush=True)
        return 0, History()
    saved = read_checkpoint(path)["extra"].get("settings", {})
    mine = _settings_record(settings, world_size)
    changed = sorted(k for k in mine if k != "epochs" and saved.get(k) != mine[k])
    if changed:
        raise CheckpointError(
            f"{path} was written by a run with other settings ({', '.join(changed)}): "
            "resume with the same ones, or give a new --checkpoint"
        )
    done = load_checkpoint(path, model, optimizer, map_location=device, restore_rng=False)
    if first:
        print(f"continuing from {path}: {done.epoch} of {settings.epochs} epochs done", flush=True)
    return done.epoch, done.history or History()


def _settings_record(settings: DDPSettings, world_size: int) -> dict:
    """What a checkpoint records of the run, to refuse resuming it with other settings (not the path)."""
    record = {**asdict(settings), "global_batch": settings.batch_size * world_size}
    del record["checkpoint"]
    return record


def _rank0_epoch(settings, model, optimizer, history, test, epoch, totals, seconds, world_size) -> None:
    """Rank 0 only: evaluate, record the epoch, write the checkpoint of the plain model, print."""
    loss_sum, correct, seen = totals
    result = evaluate(model, test)
    before = history.epochs[-1].examples_seen if history.epochs else 0
    record = EpochRecord(
        epoch, loss_sum / seen, correct / seen, result.loss, result.accuracy, before + int(seen), seconds
    )
    history.epochs.append(record)
    extra = {"settings": _settings_record(settings, world_size)}
    save_checkpoint(settings.checkpoint, model, optimizer, epoch=epoch, history=history, extra=extra)
    print(
        f"epoch {epoch}/{settings.epochs}: train loss {loss_sum / seen:.4f}, test accuracy {result.accuracy:.2%} "
        f"({world_size} process{'es' if world_size > 1 else ''}, {seconds:.1f} s)",
        flush=True,
    )


def train_ddp(
    settings: DDPSettings, *, resume: bool = False, after_epoch: Callable[[int, int], None] | None = None
) -> History | None:
    """Train with ``DistributedDataParallel`` in every process ``torchrun`` started (chapter 13).

    Args:
        settings: the run.
        resume: continue from ``settings.checkpoint`` if it exists (with the same settings), as a
            run restarted by ``torchrun --max-restarts`` must; else start from epoch 1.
        after_epoch: called as ``after_epoch(epoch, rank)`` in every process after each epoch,
            once the checkpoint is written (the chapter uses it to make one process crash).

    Returns:
        History: on rank 0, every epoch's record; ``None`` in the other processes.
    """
    rank, world_size, device = start_process_group()
    try:
        if rank == 0:
            ensure_mnist()  # one process downloads and verifies; the others wait at the barrier
        dist.barrier()
        dtype = torch.float64 if settings.float64 else torch.float32
        train = _as(load_tensors(True, limit=settings.train_limit), dtype)
        test = _as(load_tensors(False), dtype) if rank == 0 else None
        seed_everything(settings.seed)  # the same initial weights everywhere (DDP also copies rank 0's)
        model = create_model(settings.model).to(device, dtype)
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9)
        done, history = _resume(settings, model, optimizer, world_size, device) if resume else (0, History())
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        loader = ShardLoader(train, settings.batch_size, rank=rank, world_size=world_size, seed=settings.seed)
        for epoch in range(done + 1, settings.epochs + 1):
            loader.set_epoch(epoch)
            started = time.perf_counter()
            stats = train_one_epoch(ddp, loader, optimizer, progress=False)
            totals = _all_sum([stats.loss * stats.examples, stats.accuracy * stats.examples, stats.examples], device)
            if rank == 0:
                _rank0_epoch(
                    settings, model, optimizer, history, test, epoch, totals, time.perf_counter() - started, world_size
                )
            dist.barrier()  # nobody goes on (or stops) before the checkpoint of this epoch is complete
            if after_epoch is not None:
                after_epoch(epoch, rank)
        return history if rank == 0 else None
    finally:
        dist.destroy_process_group()


def check_new_run(settings: DDPSettings, *, resume: bool, overwrite: bool) -> None:
    """Before training: refuse to replace a checkpoint unless resuming or told to overwrite (chapter 13).

    Args:
        settings: the run; ``settings.checkpoint`` is the file it will write.
        resume: the run continues that file if it exists (``--resume``).
        overwrite: the run may start again over an existing file (``--overwrite``).

    Returns:
        None. :class:`~mnist_course.errors.DataError` naming both options if the file exists.
    """
    if not resume:
        check_output_path(
            settings.checkpoint,
            overwrite=overwrite,
            what="checkpoint",
            exists="pass --resume to continue it, or --overwrite to start again",
        )
    elif Path(settings.checkpoint).is_dir():
        check_output_path(settings.checkpoint, what="checkpoint")
