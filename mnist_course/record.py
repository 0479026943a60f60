"""The best-accuracy recipe: ModernCNN, augmentation, one-cycle Adam, label smoothing (chapter 12).

``python -m mnist_course record --out record.json`` trains it and writes a
:class:`RecordResult`; the book reads the committed one with ``bench.reference("record")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_course.checkpoint import save_checkpoint
from mnist_course.data import load_tensors
from mnist_course.device import pick_device
from mnist_course.download import sha256_of
from mnist_course.models import ModernCNN
from mnist_course.recipe import Budget, build_run
from mnist_course.results import Environment, environment

#: The recipe: 15 epochs of ModernCNN with random affine augmentation and label smoothing 0.1.
RECORD_BUDGET = Budget(epochs=15, batch_size=128, lr=3e-3, label_smoothing=0.1, augment=True)

#: The test accuracy the record recipe is expected to reach.
TARGET = 0.9965


@dataclass
class RecordRecipe:
    """The record run's settings, as written in its result (chapter 12).

    Args:
        model: the model class's name.
        augmentation, loss: descriptions of the augmentation and the loss.
        epochs, batch_size, lr, optimizer, schedule, seed: the :class:`~mnist_course.recipe.Budget` fields used.
    """

    model: str
    augmentation: str
    loss: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    schedule: str
    seed: int


@dataclass
class SavedCheckpoint:
    """The file name and SHA-256 of the record's checkpoint (chapter 12).

    Args:
        path: the checkpoint's file name (no folder).
        sha256: its SHA-256 hex digest.
    """

    path: str
    sha256: str


@dataclass
class RecordResult:
    """What :func:`record` measured (chapter 12)."""

    environment: Environment
    recipe: RecordRecipe
    test_accuracy: float
    best_epoch_accuracy: float
    accuracy_per_epoch: list[float]
    train_seconds: float
    training_images: int
    test_images: int
    target: float
    reached_target: bool
    checkpoint: SavedCheckpoint | None = None


def record(epochs: int = 15, *, device=None, root=None, checkpoint=None, limit=None, log=print) -> RecordResult:
    """Train the best-accuracy recipe and measure it on the test set (chapter 12).

    Args:
        epochs: epochs of the recipe.
        device: default :func:`~mnist_course.device.pick_device`.
        root: the data root.
        checkpoint: save the trained model here (its SHA-256 goes into the result).
        limit: shrink both splits to this many images (for tests).
        log: called with one line per epoch.

    Returns:
        RecordResult: settings, per-epoch test accuracy, training time, hardware.
    """
    budget = RECORD_BUDGET.with_(epochs=epochs)
    device = pick_device(device)
    train = load_tensors(True, root, device=device, limit=limit)
    test = load_tensors(False, root, device=device, limit=limit)
    run = build_run(ModernCNN, train, budget, device=device)
    history = run.fit_until(test, log=log)
    accuracies = [e.eval_accuracy for e in history.epochs]
    saved = None
    if checkpoint is not None:
        path = save_checkpoint(checkpoint, run.model, run.optimizer, run.scheduler, epoch=epochs, history=history)
        saved = SavedCheckpoint(Path(path).name, sha256_of(path))
    return RecordResult(
        environment=environment(device),
        recipe=RecordRecipe(
            model="ModernCNN",
            augmentation="random affine: +-10 degrees, +-10% shift, 0.9-1.1 zoom",
            loss=f"cross-entropy, label smoothing {budget.label_smoothing:g}",
            **{k: getattr(budget, k) for k in ("epochs", "batch_size", "lr", "optimizer", "schedule", "seed")},
        ),
        test_accuracy=accuracies[-1],
        best_epoch_accuracy=max(accuracies),
        accuracy_per_epoch=accuracies,
        train_seconds=history.train_seconds,
        training_images=len(train),
        test_images=len(test),
        target=TARGET,
        reached_target=accuracies[-1] >= TARGET,
        checkpoint=saved,
    )
