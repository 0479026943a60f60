"""Turning a photo or drawing of one digit into an MNIST-style input (chapter 10).

MNIST digits are white ink on black, anti-aliased, scaled so the longer side of the ink fits
20 pixels (aspect ratio kept), and placed in a 28x28 frame so that their centre of mass is in
the middle. :func:`prepare_digit` does the same to any image of one digit, as chapter 10
writes it step by step (the pixel work is :func:`~mnist_course.preprocess.mnist_image`, which
needs no torch), and normalises it for the model; the command line's ``predict`` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mnist_course.data import normalization_stats
from mnist_course.device import device_of, eval_mode
from mnist_course.errors import DigitImageError
from mnist_course.preprocess import mnist_image


@dataclass
class PreparedDigit:
    """An MNIST-style digit: ``tensor`` (1x1x28x28, normalised), ``image`` (28x28), ``steps`` (chapter 10)."""

    tensor: torch.Tensor
    image: np.ndarray
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    dark_background: bool = True


def prepare_digit(source, *, mean: float | None = None, std: float | None = None) -> PreparedDigit:
    """Preprocess a photo or drawing of one digit the way MNIST was made (chapter 10).

    1. grayscale; 2. make the ink white on black (the background is the median of the border);
    3. remove the background level and faint noise (Otsu threshold) and stretch the contrast;
    4. crop to the ink's bounding box (small specks ignored); 5. scale the longer side to 20
    pixels, keeping the aspect ratio (anti-aliased); 6. place in 28x28 with the centre of mass
    in the middle; 7. normalise like the training data.

    Args:
        source: anything :func:`~mnist_course.preprocess.to_grayscale` reads.
        mean: the training data's mean; default :func:`~mnist_course.data.normalization_stats`.
        std: the training data's std.

    Returns:
        PreparedDigit: the model's input, the 28x28 image and every intermediate step. A blank
        image, several marks far apart (several digits?) or unreadable input raise
        :class:`DigitImageError`.
    """
    image, steps, dark_background = mnist_image(source)
    return PreparedDigit(_normalised(image, mean, std), image, steps, dark_background)


def _normalised(image: np.ndarray, mean, std) -> torch.Tensor:
    if mean is None or std is None:
        mean, std = normalization_stats()
    return ((torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)) - mean) / std).reshape(1, 1, 28, 28)


@torch.no_grad()
def predict_digit(model: torch.nn.Module, source, *, mean=None, std=None) -> tuple[int, torch.Tensor]:
    """The predicted digit and the ten class probabilities for one image (chapter 10).

    The model runs in ``eval()`` mode on its own device; its mode is restored afterwards.

    Args:
        model: the trained network.
        source: a :class:`PreparedDigit`, or anything :func:`prepare_digit` reads.
        mean, std: passed to :func:`prepare_digit` (ignored for a :class:`PreparedDigit`).

    Returns:
        tuple: ``(digit, probabilities)``, the probabilities a CPU tensor of 10.
    """
    prepared = source if isinstance(source, PreparedDigit) else prepare_digit(source, mean=mean, std=std)
    with eval_mode(model):
        probs = torch.softmax(model(prepared.tensor.to(device_of(model))), dim=1)[0].cpu()
    return int(probs.argmax()), probs


@dataclass
class Classified:
    """The outcome for one uploaded or given file: a prediction, or the reason there is none (chapter 10)."""

    name: str
    digit: int | None = None
    probabilities: torch.Tensor | None = None
    prepared: PreparedDigit | None = None
    error: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return f"{self.name}: {self.error}"
        top = self.probabilities.topk(3)
        others = ", ".join(f"{int(d)} {p:.1%}" for p, d in zip(top.values[1:], top.indices[1:], strict=True))
        return f"{self.name}: {self.digit} ({self.probabilities[self.digit]:.1%}; then {others})"


def classify(model: torch.nn.Module, files: list[tuple[str, object]], *, mean=None, std=None) -> list[Classified]:
    """Prepare and classify each ``(name, image source)``; a bad file gets its error, not an exception (chapter 10).

    Args:
        model: the trained network.
        files: ``(name, source)`` pairs; ``source`` is anything :func:`prepare_digit` reads.
        mean, std: passed to :func:`prepare_digit`.

    Returns:
        list[Classified]: one per file, in order; a :class:`DigitImageError` becomes its ``error``.
    """
    results = []
    for name, source in files:
        try:
            prepared = prepare_digit(source, mean=mean, std=std)
        except DigitImageError as exc:
            results.append(Classified(name, error=str(exc)))
            continue
        digit, probs = predict_digit(model, prepared)
        results.append(Classified(name, digit, probs, prepared))
    return results
