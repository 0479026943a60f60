"""Measuring a trained model: loss, accuracy, per-class accuracy, confusion (chapters 4 and 6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_course.data import TensorData, TensorLoader


def as_batches(data, batch_size: int = 1000):
    """Anything the book trains on, as an iterable of ``(images, labels)`` batches (chapter 4).

    A ``DataLoader``, a :class:`~mnist_course.data.TensorLoader` or a list of batches is
    returned as is; a :class:`~mnist_course.data.TensorData` or a map-style ``Dataset`` is
    wrapped in batches of ``batch_size`` without shuffling.
    """
    if isinstance(data, TensorData):
        return TensorLoader(data, batch_size)
    if isinstance(data, torch.utils.data.Dataset):
        return torch.utils.data.DataLoader(data, batch_size=batch_size)
    return data


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@dataclass
class Evaluation:
    """Mean loss and accuracy over a whole dataset (chapter 4)."""

    loss: float
    accuracy: float
    correct: int
    total: int

    def __str__(self) -> str:
        return f"loss {self.loss:.4f}, accuracy {self.correct}/{self.total} = {self.accuracy:.2%}"


@torch.no_grad()
def evaluate(model: nn.Module, data, *, loss_fn=F.cross_entropy, device=None) -> Evaluation:
    """Mean loss and accuracy of ``model`` over every example of ``data``, in ``eval()`` mode (chapter 4).

    The model's train/eval mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval()
    total_loss, correct, total = 0.0, 0, 0
    try:
        for x, y in as_batches(data):
            x, y = x.to(device), y.to(device)
            out = model(x)
            total_loss += loss_fn(out, y).item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("evaluate() got no examples: the data is empty")
    return Evaluation(total_loss / total, correct / total, correct, total)


@dataclass
class Predictions:
    """Every example's label, predicted class and class probabilities, on the CPU (chapter 4)."""

    labels: torch.Tensor
    predicted: torch.Tensor
    probabilities: torch.Tensor

    @property
    def accuracy(self) -> float:
        return (self.predicted == self.labels).float().mean().item()

    @property
    def mistakes(self) -> torch.Tensor:
        """Indices of the wrongly classified examples."""
        return (self.predicted != self.labels).nonzero().flatten()


@torch.no_grad()
def predict(model: nn.Module, data, *, device=None) -> Predictions:
    """Run ``model`` in ``eval()`` mode over ``data`` and keep labels, predictions, probabilities (chapter 4).

    Softmax turns logits into probabilities; it gives the same result for models that
    already return log-probabilities.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    was_training = model.training
    model.eval()
    labels, probs = [], []
    try:
        for x, y in as_batches(data):
            probs.append(torch.softmax(model(x.to(device)), dim=1).cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    p = torch.cat(probs)
    return Predictions(torch.cat(labels), p.argmax(1), p)


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """``cm[true, predicted]`` counts over all examples (chapter 6)."""
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and labels {tuple(labels.shape)} differ in shape")
    index = labels.long() * num_classes + predicted.long()
    return torch.bincount(index.cpu(), minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Accuracy for each true class over every example, not the first few of each batch (chapter 4).

    A class with no examples gets ``nan``.
    """
    cm = confusion_matrix(predicted, labels, num_classes).double()
    return cm.diagonal() / cm.sum(1)


def most_confused(cm: torch.Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as ``(true, predicted, count)``, largest first (chapter 6)."""
    off = cm.clone()
    off.fill_diagonal_(0)
    counts, flat = off.flatten().sort(descending=True, stable=True)
    n = cm.shape[1]
    return [(int(i) // n, int(i) % n, int(c)) for c, i in zip(counts[:k], flat[:k], strict=False) if c > 0]
