"""Training: one epoch written as the chapter writes it, and ``fit``, epochs of it (chapter 4).

Chapter 4 writes the loop by hand first. :func:`train_one_epoch` is that loop (``zero_grad``,
forward, loss, ``backward``, ``step``) with a progress bar; :func:`fit` runs it for several
epochs, evaluates after each, keeps a :class:`~mnist_course.history.History` and, if asked,
saves a checkpoint after every epoch. Both run on the model's device.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mnist_course.checkpoint import load_checkpoint, save_checkpoint
from mnist_course.device import device_of, train_mode
from mnist_course.evaluate import evaluate
from mnist_course.history import EpochRecord, History

__all__ = ["EpochRecord", "EpochStats", "History", "fit", "train_one_epoch"]


@dataclass
class EpochStats:
    """What :func:`train_one_epoch` measured (chapter 4).

    Args:
        loss: mean training loss over the epoch's examples.
        accuracy: fraction of training examples classified right while learning.
        examples: training examples seen in the epoch.
        seconds: wall-clock time of the epoch.
        batch_losses: ``(batch size, loss)`` of every batch, in order.
    """

    loss: float
    accuracy: float
    examples: int
    seconds: float
    batch_losses: list[tuple[int, float]]


def _check_finite(loss: float, where: str) -> None:
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"the training loss became {loss} at {where}: the weights are now unusable. Lower the "
            "learning rate, check the inputs are normalised, and start again (or resume from the last checkpoint)."
        )


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    loss_fn=F.cross_entropy,
    *,
    scheduler=None,
    autocast: torch.dtype | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> EpochStats:
    """One pass over ``loader`` on the model's device: the loop chapter 4 writes by hand (chapter 4).

    Args:
        model: the network; put in ``train()`` mode.
        loader: yields ``(images, labels)`` batches (a ``DataLoader``, a ``TensorLoader``, ...).
        optimizer: steps once per batch.
        loss_fn: ``loss_fn(outputs, labels)``; cross-entropy by default.
        scheduler: a learning-rate scheduler stepped after every batch (e.g. ``OneCycleLR``).
        autocast: e.g. ``torch.bfloat16``: forward pass and loss in mixed precision (chapter 10).
        progress, desc: show a ``tqdm.auto`` bar labelled ``desc`` with the running loss and accuracy.

    Returns:
        EpochStats: loss, accuracy, examples, seconds and each batch's loss (a non-finite loss raises).
    """
    device = device_of(model)
    model.train()
    total_loss, correct, seen, batch_losses, started = 0.0, 0, 0, [], time.perf_counter()
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress)
    for batch, (images, labels) in enumerate(bar, 1):
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        with torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext():
            outputs = model(images)
            loss = loss_fn(outputs, labels)
        value = loss.item()
        _check_finite(value, f"{desc + ', ' if desc else ''}batch {batch}")
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch_losses.append((len(labels), value))
        total_loss += value * len(labels)
        correct += (outputs.argmax(1) == labels).sum().item()
        seen += len(labels)
        if batch % 20 == 0 or batch == bar.total:  # the last batch too, so the bar ends with the epoch's figures
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.2%}", refresh=False)
    if seen == 0:
        raise ValueError("the training data is empty: the loader yielded no batches")
    return EpochStats(total_loss / seen, correct / seen, seen, time.perf_counter() - started, batch_losses)


def _record(history: History, epoch: int, stats: EpochStats, evaluation) -> None:
    seen = history.examples_seen
    for size, loss in stats.batch_losses:
        seen += size
        history.batches.append([seen, loss])
    history.epochs.append(
        EpochRecord(
            epoch=epoch,
            train_loss=stats.loss,
            train_accuracy=stats.accuracy,
            eval_loss=evaluation.loss if evaluation else None,
            eval_accuracy=evaluation.accuracy if evaluation else None,
            examples_seen=seen,
            seconds=stats.seconds,
        )
    )


def _start(history, epochs, checkpoint, resume, model, optimizer, scheduler, loader) -> History:
    """The history :func:`fit` continues: the checkpoint's when resuming, else the given or a new one."""
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH to resume from")
    if resume and Path(checkpoint).exists():
        return load_checkpoint(checkpoint, model, optimizer, scheduler, loader=loader).history or History()
    return history if history is not None else History()


def fit(
    model: nn.Module,
    train_loader,
    eval_data=None,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    scheduler=None,
    loss_fn=F.cross_entropy,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    history: History | None = None,
    autocast: torch.dtype | None = None,
) -> History:
    """Train for ``epochs`` epochs with :func:`train_one_epoch`, evaluating after each (chapter 4).

    Runs on the model's device and leaves the model in the train/eval mode it found.

    Args:
        model, train_loader, optimizer, scheduler, loss_fn, autocast: as for :func:`train_one_epoch`.
        eval_data: evaluated after every epoch by :func:`~mnist_course.evaluate.evaluate`: the
            validation split while you make choices, the test split for a final figure.
        epochs: the total, counting the epochs already in ``history`` or the checkpoint.
        progress: a progress bar per epoch.
        checkpoint: save a checkpoint here after every epoch (chapter 7).
        resume: continue from ``checkpoint`` if it exists (weights, all states, history).
        history: an earlier run's record, continued in place.

    Returns:
        History: every batch's loss and one :class:`~mnist_course.history.EpochRecord` per epoch.
    """
    history = _start(history, epochs, checkpoint, resume, model, optimizer, scheduler, train_loader)
    options = {"scheduler": scheduler, "autocast": autocast, "progress": progress}
    with train_mode(model):
        for epoch in range(len(history.epochs) + 1, epochs + 1):
            stats = train_one_epoch(model, train_loader, optimizer, loss_fn, desc=f"epoch {epoch}/{epochs}", **options)
            evaluation = evaluate(model, eval_data, loss_fn=loss_fn) if eval_data is not None else None
            _record(history, epoch, stats, evaluation)
            if checkpoint is not None:
                save_checkpoint(
                    checkpoint, model, optimizer, scheduler, epoch=epoch, history=history, loader=train_loader
                )
    return history
