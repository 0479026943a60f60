"""Measuring a trained model: loss, accuracy, predictions, the confusion matrix (chapters 4 and 6).

Every function here runs on the model's device and leaves the model's train/eval mode as it
found it, even when it raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_course.data import as_batches, check_labels
from mnist_course.device import device_of, eval_mode
from mnist_course.errors import InputError


@dataclass
class Evaluation:
    """Mean loss and accuracy over a whole dataset (chapter 4).

    Args:
        loss: mean loss per example.
        accuracy: ``correct / total``.
        correct: examples whose largest score is the true class.
        total: examples.
    """

    loss: float
    accuracy: float
    correct: int
    total: int

    def __str__(self) -> str:
        return f"loss {self.loss:.4f}, accuracy {self.correct}/{self.total} = {self.accuracy:.2%}"


@torch.no_grad()
def evaluate(model: nn.Module, data, *, loss_fn=F.cross_entropy) -> Evaluation:
    """Mean loss and accuracy of ``model`` over every example of ``data``, in ``eval()`` mode (chapter 4).

    Args:
        model: the network; runs on its own device.
        data: anything :func:`~mnist_course.data.as_batches` accepts.
        loss_fn: ``loss_fn(outputs, labels)`` returning the batch mean; cross-entropy by default.

    Returns:
        Evaluation: loss, accuracy, correct and total.
    """
    device = device_of(model)
    total_loss, correct, total = 0.0, 0, 0
    with eval_mode(model):
        for x, y in as_batches(data):
            x, y = x.to(device), y.to(device)
            out = model(x)
            check_labels(y, out.shape[-1])
            total_loss += loss_fn(out, y).item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    if total == 0:
        raise InputError("evaluate() got no examples: the data is empty")
    return Evaluation(total_loss / total, correct / total, correct, total)


@dataclass
class Predictions:
    """Every example's label, predicted class and class probabilities, on the CPU (chapter 6).

    Args:
        labels: the true classes (N,).
        predicted: the predicted classes (N,).
        probabilities: softmax of the scores (N x 10).
    """

    labels: torch.Tensor
    predicted: torch.Tensor
    probabilities: torch.Tensor

    @property
    def accuracy(self) -> float:
        """Fraction predicted right."""
        return (self.predicted == self.labels).float().mean().item()

    @property
    def mistakes(self) -> torch.Tensor:
        """Indices of the wrongly classified examples."""
        return (self.predicted != self.labels).nonzero().flatten()

    def where(self, true: int, predicted: int) -> torch.Tensor:
        """Indices of the examples of class ``true`` that were predicted as ``predicted`` (chapter 8)."""
        return ((self.labels == true) & (self.predicted == predicted)).nonzero().flatten()


@torch.no_grad()
def predict(model: nn.Module, data) -> Predictions:
    """Run ``model`` in ``eval()`` mode over ``data`` and keep labels, predictions, probabilities (chapter 6).

    Softmax turns scores into probabilities; it gives the same result for models that already
    return log-probabilities.

    Args:
        model: the network; runs on its own device.
        data: anything :func:`~mnist_course.data.as_batches` accepts.

    Returns:
        Predictions: labels, predicted classes and probabilities, on the CPU.
    """
    device = device_of(model)
    labels, probs = [], []
    with eval_mode(model):
        for x, y in as_batches(data):
            probs.append(torch.softmax(model(x.to(device)), dim=1).cpu())
            labels.append(y.cpu())
    if not labels:
        raise InputError("predict() got no examples: the data is empty")
    p = torch.cat(probs)
    return Predictions(torch.cat(labels), p.argmax(1), p)


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """``cm[true, predicted]`` counts over all examples, built with one ``bincount`` (chapter 4).

    Args:
        predicted: predicted classes (N,).
        labels: true classes (N,).
        num_classes: classes are ``0 .. num_classes - 1``; anything else is refused.

    Returns:
        torch.Tensor: ``num_classes x num_classes`` int64 counts, on the CPU.
    """
    if predicted.shape != labels.shape:
        raise InputError(f"predicted {tuple(predicted.shape)} and labels {tuple(labels.shape)} differ in shape")
    check_labels(labels, num_classes)
    check_labels(predicted, num_classes, "predicted")
    index = labels.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
