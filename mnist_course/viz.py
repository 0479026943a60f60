"""Plots the chapters reuse: labelled digits, training curves, the confusion matrix (chapters 2, 4 and 6).

Every function returns a matplotlib ``Figure`` with a white background (readable in dark
themes), closed from pyplot so it is shown exactly once when it is a cell's last value, and
never touches global ``rcParams``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mnist_course.errors import InputError

MISTAKE_COLOR = "#d62728"
CORRECT_COLOR = "#1a1a1a"


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), facecolor="white", squeeze=False)
    plt.close(fig)
    for ax in axes.flat:
        ax.set_facecolor("white")
    return fig, axes


def unnormalize(images: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """Undo ``Normalize(mean, std)`` and clamp to [0, 1] for display (chapter 2).

    Args:
        images: any shape; detached and copied to the CPU as float32.
        mean, std: the normalisation to undo.

    Returns:
        torch.Tensor: ``images * std + mean`` clamped to [0, 1], same shape, on the CPU.
    """
    return (images.detach().cpu().float() * std + mean).clamp(0, 1)


def _title_cell(ax, truth: int, guess: int | None) -> None:
    """Title a digit's cell with its label, or ``pred (true)`` in red with a red frame when wrong."""
    if guess is None or guess == truth:
        ax.set_title(str(truth), fontsize=10, color=CORRECT_COLOR)
        return
    ax.set_title(f"{guess} ({truth})", fontsize=10, color=MISTAKE_COLOR, fontweight="bold")
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(MISTAKE_COLOR)
        spine.set_linewidth(2)


def show_labelled(
    images: torch.Tensor,
    labels,
    predicted=None,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    nrow: int = 8,
) -> Figure:
    """A grid of digits titled with their label, or ``pred (true)`` in red where a prediction is wrong (chapters 2, 6).

    Args:
        images: ``N x 1 x H x W`` (or ``N x H x W``), normalised with ``mean`` and ``std``.
        labels: the N true classes.
        predicted: the N predicted classes, or None to show labels only.
        mean: the normalisation's mean, undone for display.
        std: the normalisation's std.
        nrow: digits per row, as in ``make_grid``.

    Returns:
        Figure: the grid.
    """
    if len(images) == 0:
        raise InputError("show_labelled() got no images: pass at least one")
    images = unnormalize(images, mean, std)
    nrows = math.ceil(len(images) / nrow)
    fig, axes = _figure(1.25 * nrow, 1.45 * nrows, nrows, nrow)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i].squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
            _title_cell(ax, int(labels[i]), None if predicted is None else int(predicted[i]))
    if predicted is not None:
        fig.suptitle("prediction (true label where wrong)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_history(history, *, eval_label: str = "validation") -> Figure:
    """Training loss per batch, evaluation loss per epoch, and accuracy, against examples seen (chapter 6).

    Args:
        history: a :class:`~mnist_course.history.History`.
        eval_label: what the evaluation data was, for the legend (``"validation"`` or ``"test"``).

    Returns:
        Figure: loss (log scale) on the left, accuracy on the right.
    """
    fig, axes = _figure(11, 3.8, 1, 2)
    ax_loss, ax_acc = axes[0]
    seen, loss = zip(*history.batches, strict=True) if history.batches else ((), ())
    ax_loss.plot(seen, loss, color="#1f77b4", lw=0.6, alpha=0.6, label="train loss (per batch)")
    epochs = [e for e in history.epochs if e.eval_loss is not None]
    ax_loss.scatter(
        [e.examples_seen for e in epochs],
        [e.eval_loss for e in epochs],
        color=MISTAKE_COLOR,
        zorder=3,
        label=f"{eval_label} loss",
    )
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("cross-entropy loss")
    trained = [e for e in history.epochs if e.train_accuracy is not None]
    ax_acc.plot(
        [e.examples_seen for e in trained], [100 * e.train_accuracy for e in trained], "o-", label="train (running)"
    )
    ax_acc.plot(
        [e.examples_seen for e in epochs],
        [100 * e.eval_accuracy for e in epochs],
        "s-",
        color=MISTAKE_COLOR,
        label=eval_label,
    )
    ax_acc.set_ylabel("accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("training examples seen")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm: torch.Tensor, *, title: str = "confusion matrix") -> Figure:
    """Heatmap of ``cm[true, predicted]`` with counts written in the cells (chapter 4).

    The colours are on a ``log(1 + count)`` scale, so the few mistakes stay visible beside the diagonal.

    Args:
        cm: a square count matrix, e.g. :func:`~mnist_course.evaluate.confusion_matrix`.
        title: above the heatmap.

    Returns:
        Figure: the heatmap with a colour bar; empty cells are left blank.
    """
    cm = torch.as_tensor(cm).cpu()
    n = cm.shape[0]
    fig, axes = _figure(6.2, 5.4)
    ax = axes[0, 0]
    shown = np.log1p(cm.numpy().astype(float))
    im = ax.imshow(shown, cmap="Blues")
    for t in range(n):
        for p in range(n):
            c = int(cm[t, p])
            if c:
                ax.text(
                    p,
                    t,
                    str(c),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shown[t, p] > shown.max() * 0.6 else "black",
                )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    return fig
