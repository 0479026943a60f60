"""Training: choosing a device, seeding, and the ``fit`` loop with its history (chapter 4).

Chapter 4 writes the loop by hand first; :func:`fit` is that same loop (``zero_grad``,
forward, loss, ``backward``, ``step``; ``train()`` then ``eval()`` under ``no_grad``) plus a
progress bar, a history, a finite-loss check and checkpoints.
"""

from __future__ import annotations

import os
import platform
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mnist_course.checkpoint import load_checkpoint, save_checkpoint
from mnist_course.evaluate import as_batches, evaluate


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU; or check that ``preferred`` exists (chapter 4)."""
    if preferred is not None:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {preferred!r} was asked for, but no CUDA GPU is available; use 'cpu'")
        if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {preferred!r} was asked for, but Apple MPS is not available; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: str | torch.device) -> str:
    """One line naming the hardware behind ``device`` (chapter 4)."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"CUDA GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB (torch {torch.__version__})"
    if device.type == "mps":
        return f"Apple MPS GPU on {platform.machine()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    return f"CPU: {cpu}, {torch.get_num_threads()} threads of {os.cpu_count()} cores (torch {torch.__version__})"


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively, so bf16 autocast can pay off (chapter 10).

    CUDA: what ``torch.cuda.is_bf16_supported()`` says. CPU: whether oneDNN finds bf16
    instructions (AVX512-BF16 or AMX); without them bf16 is emulated and slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:  # torch >= 2.3 would otherwise count slow emulation (e.g. a T4) as support
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # an older or differently built torch: assume not
            return False
    return False


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators (all devices) for a reproducible run (chapter 4)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class History:
    """What :func:`fit` recorded (chapter 4).

    ``batches``: ``[examples_seen, loss]`` after every training batch. ``epochs``: one dict per
    epoch with ``epoch``, ``train_loss``, ``train_accuracy`` (running, in train mode),
    ``test_loss``, ``test_accuracy`` (None without test data), ``examples_seen`` and
    ``seconds`` (training time of that epoch, evaluation excluded).
    """

    batches: list = field(default_factory=list)
    epochs: list = field(default_factory=list)

    @property
    def examples_seen(self) -> int:
        return self.batches[-1][0] if self.batches else 0

    @property
    def train_seconds(self) -> float:
        return sum(e["seconds"] for e in self.epochs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(batches=[list(b) for b in d["batches"]], epochs=[dict(e) for e in d["epochs"]])


def fit(
    model: nn.Module,
    train_data,
    test_data=None,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    scheduler=None,
    scheduler_interval: str = "epoch",
    loss_fn=F.cross_entropy,
    device=None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    history: History | None = None,
    autocast: torch.dtype | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and evaluate after each (chapter 4).

    ``train_data``/``test_data``: a ``DataLoader``, a
    :class:`~mnist_course.data.TensorLoader`, or anything yielding ``(images, labels)``.
    ``scheduler`` steps once per epoch, or per batch with ``scheduler_interval="batch"``
    (``OneCycleLR``). ``progress`` shows a ``tqdm.auto`` bar with the running loss and
    accuracy. With ``checkpoint`` a checkpoint is saved after every epoch; with ``resume``
    training continues from it (``epochs`` counts the epochs already done). ``history``
    continues an earlier run's record in place (``epochs`` then counts its epochs too). A
    non-finite loss raises ``FloatingPointError`` naming the epoch and batch. ``autocast``
    (e.g. ``torch.bfloat16``) runs the forward pass and loss in mixed precision (chapter 10);
    the weights and the optimizer stay in float32.
    """
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH to resume from")
    device = pick_device(device)
    model.to(device)
    history = history if history is not None else History()
    start = len(history.epochs)
    if resume and Path(checkpoint).exists():
        ck = load_checkpoint(checkpoint, model, optimizer, scheduler, loader=train_data, map_location=device)
        history, start = ck.history or History(), ck.epoch
    seen = history.examples_seen
    for epoch in range(start + 1, epochs + 1):
        model.train()
        loss_sum, correct, count = 0.0, 0, 0
        bar = tqdm(train_data, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not progress, leave=True)
        started = time.perf_counter()
        for batch, (x, y) in enumerate(bar, 1):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext():
                out = model(x)
                loss = loss_fn(out, y)
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(
                    f"the training loss became {value} at epoch {epoch}, batch {batch}: the weights are now "
                    "unusable. Lower the learning rate, check the inputs are normalised, and start again "
                    "(or resume from the last checkpoint)."
                )
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_interval == "batch":
                scheduler.step()
            seen += len(y)
            loss_sum += value * len(y)
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
            history.batches.append([seen, value])
            if progress and (batch % 20 == 0 or batch == len(bar)):
                bar.set_postfix(loss=f"{loss_sum / count:.4f}", acc=f"{correct / count:.2%}", refresh=False)
        seconds = time.perf_counter() - started
        bar.close()
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        test = evaluate(model, as_batches(test_data), loss_fn=loss_fn, device=device) if test_data is not None else None
        history.epochs.append(
            {
                "epoch": epoch,
                "train_loss": loss_sum / max(count, 1),
                "train_accuracy": correct / max(count, 1),
                "test_loss": test.loss if test else None,
                "test_accuracy": test.accuracy if test else None,
                "examples_seen": seen,
                "seconds": seconds,
            }
        )
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, scheduler, epoch=epoch, history=history, loader=train_data)
    return history
