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
from mnist_course.data import check_labels
from mnist_course.device import device_of, train_mode
from mnist_course.download import check_output_path
from mnist_course.errors import InputError, TrainingDiverged
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


#: Training has diverged when a batch loss exceeds this many times the loss of guessing
#: uniformly among the classes (``ln(10)`` = 2.30 for ten digits), or is not finite.
DIVERGED_LOSS_FACTOR = 10


def _check_loss(loss: float, classes: int, where: str) -> None:
    limit = DIVERGED_LOSS_FACTOR * math.log(max(classes, 2))
    if not math.isfinite(loss) or loss > limit:
        raise TrainingDiverged(
            f"training diverged: the loss became {loss:.4g} at {where} (more than {DIVERGED_LOSS_FACTOR}x the "
            f"{math.log(max(classes, 2)):.2f} of guessing, or not finite), so the weights are unusable: start again "
            "with a lower learning rate, and check that the inputs are normalised."
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
        optimizer, scheduler: step once per batch (the scheduler, e.g. ``OneCycleLR``, if given).
        loss_fn: ``loss_fn(outputs, labels)``; cross-entropy by default.
        autocast: e.g. ``torch.bfloat16``: forward pass and loss in mixed precision (chapter 12).
        progress, desc: a ``tqdm.auto`` bar labelled ``desc``, with the running loss and accuracy.

    Returns:
        EpochStats: loss, accuracy, examples, seconds, each batch's loss. ``TrainingDiverged`` if it diverges.
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
            check_labels(labels, outputs.shape[-1])
            loss = loss_fn(outputs, labels)
        value = loss.item()
        _check_loss(value, outputs.shape[-1], f"{desc + ', ' if desc else ''}batch {batch}")
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
        raise InputError("the training data is empty: the loader yielded no batches")
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


def _start(history, epochs, checkpoint, resume, overwrite, model, optimizer, scheduler, loader):
    """The history :func:`fit` continues and the epochs already done: the checkpoint's when resuming.

    A checkpoint file is only replaced by the run it belongs to (``resume``) or when asked
    (``overwrite``), and its path is checked for writing before the first batch.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH to resume from")
    history = history if history is not None else History()
    if checkpoint is None:
        return history, len(history.epochs)
    hint = "resume=True continues that run, overwrite=True replaces it with a new one"
    check_output_path(checkpoint, overwrite=resume or overwrite, what="checkpoint", exists=hint)
    if resume and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint, model, optimizer, scheduler, loader=loader)
        return saved.history or History(), saved.epoch
    return history, len(history.epochs)


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
    extra: dict | None = None,
    overwrite: bool = False,
) -> History:
    """Train for ``epochs`` epochs with :func:`train_one_epoch`, evaluating after each (chapter 4).

    Runs on the model's device and leaves the model in the train/eval mode it found.

    Args:
        model, train_loader, optimizer, loss_fn, autocast: as for :func:`train_one_epoch`.
        scheduler: stepped after every batch, as ``OneCycleLR`` expects; count a per-epoch
            schedule in batches (e.g. ``StepLR(optimizer, step_size=len(train_loader))``).
        eval_data: evaluated after every epoch by :func:`~mnist_course.evaluate.evaluate`: the
            validation split while you make choices, the test split for a final figure.
        epochs: the total, counting the epochs already in ``history`` or the checkpoint.
        progress: a progress bar per epoch.
        checkpoint, extra: save a checkpoint here after every epoch, with ``extra`` (e.g. the settings) (chapter 9).
        resume, overwrite: continue from an existing ``checkpoint`` (weights, all states, history), or
            replace it with this run; without either, an existing file is refused before any training.
        history: an earlier run's record, continued in place.

    Returns:
        History: every batch's loss and one :class:`~mnist_course.history.EpochRecord` per epoch.
    """
    history, done = _start(history, epochs, checkpoint, resume, overwrite, model, optimizer, scheduler, train_loader)
    options = {"scheduler": scheduler, "autocast": autocast, "progress": progress}
    saved_with = {"loader": train_loader, "extra": extra}
    with train_mode(model):
        for epoch in range(done + 1, epochs + 1):
            stats = train_one_epoch(model, train_loader, optimizer, loss_fn, desc=f"epoch {epoch}/{epochs}", **options)
            evaluation = evaluate(model, eval_data, loss_fn=loss_fn) if eval_data is not None else None
            _record(history, epoch, stats, evaluation)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, epoch=epoch, history=history, **saved_with)
    return history
