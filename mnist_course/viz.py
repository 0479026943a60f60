"""Plots of digits, training curves and errors (chapters 2, 6 and 8).

Every function returns a matplotlib ``Figure`` with a white background (readable in dark
themes), closed from pyplot so it is shown exactly once when it is a cell's last value, and
never touches global ``rcParams``.
"""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torchvision.utils import make_grid

from mnist_course.errors import InputError
from mnist_course.shapes import output_size

MISTAKE_COLOR = "#d62728"
CORRECT_COLOR = "#1a1a1a"


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1, width_ratios=None):
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), facecolor="white", squeeze=False, width_ratios=width_ratios
    )
    plt.close(fig)
    for ax in axes.flat:
        ax.set_facecolor("white")
    return fig, axes


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes with a white background, for ``ipywidgets.Image`` (chapter 2).

    Args:
        fig: the figure; saved with a tight bounding box.
        dpi: the resolution.

    Returns:
        bytes: the PNG file.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white", bbox_inches="tight")
    return buffer.getvalue()


def unnormalize(images: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """Undo ``Normalize(mean, std)`` and clamp to [0, 1] for display (chapter 2).

    Args:
        images: any shape; detached and copied to the CPU as float32.
        mean, std: the normalisation to undo.

    Returns:
        torch.Tensor: ``images * std + mean`` clamped to [0, 1], same shape, on the CPU.
    """
    return (images.detach().cpu().float() * std + mean).clamp(0, 1)


def show_image(image: torch.Tensor, title: str | None = None, *, mean: float = 0.0, std: float = 1.0) -> Figure:
    """One digit in gray, large enough to see its pixels (chapter 2).

    Args:
        image: ``28x28``, ``1x28x28`` or a PIL-like array.
        title: above the image.
        mean: the normalisation's mean, undone for display.
        std: the normalisation's std.

    Returns:
        Figure: the image.
    """
    img = unnormalize(torch.as_tensor(np.asarray(image, dtype=np.float32)), mean, std).squeeze()
    if img.ndim != 2:
        raise InputError(f"show_image() takes one grayscale image, got shape {tuple(img.shape)}")
    fig, axes = _figure(3.2, 3.2)
    ax = axes[0, 0]
    ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def show_batch(
    images: torch.Tensor, *, mean: float = 0.0, std: float = 1.0, nrow: int = 8, title: str | None = None
) -> Figure:
    """A batch through ``torchvision.utils.make_grid``, un-normalised (chapter 2).

    Args:
        images: ``N x 1 x H x W`` (or ``N x 3 x H x W``), normalised with ``mean`` and ``std``.
        mean: the normalisation's mean, undone for display.
        std: the normalisation's std.
        nrow: images per row.
        title: above the grid.

    Returns:
        Figure: the grid.
    """
    if images.ndim != 4 or len(images) == 0:
        raise InputError(f"show_batch() takes a non-empty batch N x C x H x W, got shape {tuple(images.shape)}")
    grid = make_grid(unnormalize(images, mean, std), nrow=nrow, padding=2, pad_value=1.0)
    rows = math.ceil(len(images) / nrow)
    fig, axes = _figure(max(2.0, 0.6 * nrow), max(1.2, 0.6 * rows + (0.4 if title else 0)))
    ax = axes[0, 0]
    ax.imshow(grid.permute(1, 2, 0).numpy(), vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


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


def plot_per_class_accuracy(accuracy, *, title: str = "accuracy per digit") -> Figure:
    """Bars of each class's accuracy, the y axis zoomed to where the differences are (chapter 6).

    Args:
        accuracy: one accuracy in [0, 1] per class, e.g. :func:`~mnist_course.evaluate.per_class_accuracy`.
        title: above the bars.

    Returns:
        Figure: bars labelled with the percentages.
    """
    acc = 100 * torch.as_tensor(accuracy, dtype=torch.float64).cpu().numpy()
    fig, axes = _figure(6.5, 3.2)
    ax = axes[0, 0]
    bars = ax.bar(range(len(acc)), acc, color="#1f77b4")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    low = np.nanmin(acc)
    ax.set_ylim(max(0, low - (100 - low) * 0.6 - 0.5), 100.5)
    ax.set_xticks(range(len(acc)))
    ax.set_xlabel("digit")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_class_histogram(labels, *, title: str = "examples per digit") -> Figure:
    """Bars of how many examples each digit has (chapter 2).

    Args:
        labels: the classes 0-9 of every example (a tensor or anything ``torch.as_tensor`` takes).
        title: above the bars.

    Returns:
        Figure: bars labelled with the counts.
    """
    counts = torch.bincount(torch.as_tensor(labels).cpu().long(), minlength=10).numpy()
    fig, axes = _figure(6.5, 3.2)
    ax = axes[0, 0]
    bars = ax.bar(range(len(counts)), counts, color="#2ca02c")
    ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(counts)))
    ax.set_xlabel("digit")
    ax.set_ylabel("examples")
    ax.set_title(title)
    ax.set_ylim(0, counts.max() * 1.12)
    fig.tight_layout()
    return fig


def plot_probabilities(probabilities, image=None, *, title: str | None = None) -> Figure:
    """Bars of the ten class probabilities, the prediction highlighted, optionally beside the input (chapter 10).

    Args:
        probabilities: exactly 10 values, any shape.
        image: the model input to show on the left (values in [0, 1], e.g. ``PreparedDigit.image``), or None.
        title: above the bars; default names the prediction and its probability.

    Returns:
        Figure: the bars, with the input beside them when given.
    """
    probs = torch.as_tensor(probabilities, dtype=torch.float64).flatten().cpu()
    if probs.numel() != 10:
        raise InputError(f"plot_probabilities() takes 10 class probabilities, got {probs.numel()}")
    ncols = 2 if image is not None else 1
    fig, axes = _figure(3.0 * ncols + 1.5, 2.8, 1, ncols, width_ratios=[1, 2] if image is not None else None)
    if image is not None:
        ax = axes[0, 0]
        ax.imshow(np.asarray(image, dtype=np.float32).squeeze(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("model input")
    ax = axes[0, -1]
    best = int(probs.argmax())
    colors = ["#1f77b4"] * 10
    colors[best] = "#2ca02c"
    ax.bar(range(10), 100 * probs.numpy(), color=colors)
    ax.set_xticks(range(10))
    ax.set_ylim(0, 105)
    ax.set_xlabel("digit")
    ax.set_ylabel("probability (%)")
    ax.set_title(title or f"prediction: {best} ({probs[best]:.1%})")
    fig.tight_layout()
    return fig


def plot_conv_windows(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Figure:
    """The padded input grid with the first and last positions of a conv or pool window (chapter 5).

    Args:
        size: input height and width.
        kernel_size: the window's size.
        stride: its step.
        padding: zeros added on each side (drawn grey).
        dilation: spacing between the window's taps.

    Returns:
        Figure: the grid; settings with no output say why in the title.
    """
    total = size + 2 * padding
    fig, axes = _figure(4.2, 4.4)
    ax = axes[0, 0]
    ax.set_xlim(0, total)
    ax.set_ylim(total, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for r in range(total):
        for c in range(total):
            pad = not (padding <= r < padding + size and padding <= c < padding + size)
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="#eeeeee" if pad else "white", edgecolor="#bbbbbb", lw=0.5))
    try:
        out = output_size(size, kernel_size, stride, padding, dilation)
    except ValueError as exc:
        ax.set_title(str(exc), fontsize=8, color=MISTAKE_COLOR, wrap=True)
        return fig
    for pos, color in ((0, "#1f77b4"), (out - 1, MISTAKE_COLOR)):
        start = pos * stride
        for i in range(kernel_size):
            for j in range(kernel_size):
                ax.add_patch(Rectangle((start + j * dilation, start + i * dilation), 1, 1, facecolor=color, alpha=0.45))
    ax.set_title(
        f"{size}x{size} input, padding {padding} (grey): output {out}x{out}\nfirst window (blue), last window (red)",
        fontsize=9,
    )
    return fig
