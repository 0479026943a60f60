"""Interactive explorers: a digit browser (chapter 2) and a conv-shape calculator (chapter 5).

The logic lives in plain functions (:func:`digit_card`, :func:`conv_report`) that tests call
directly; the widgets only wire sliders to them. They use the ipywidgets API shared by 7.7
(Colab) and 8: ``IntSlider``, ``HTML``, ``Image``, ``VBox`` and ``observe``. Pictures go into
``Image`` widgets as PNG bytes (not an ``Output`` widget), so the saved widget state shows them
in the rendered book and nothing leaks into the cell's own outputs.
"""

from __future__ import annotations

import torch

from mnist_course.handwriting import classify, uploaded_files
from mnist_course.shapes import output_size
from mnist_course.viz import figure_png, plot_conv_windows, plot_probabilities, show_image, unnormalize


def digit_card(images: torch.Tensor, labels: torch.Tensor, index: int, *, mean: float = 0.0, std: float = 1.0) -> dict:
    """Label and pixel statistics of one digit, in [0, 1] pixel units (chapter 2).

    Raises ``IndexError`` with the valid range for an index outside the data.

    Args:
        images, labels: the dataset (images normalised with ``mean`` and ``std``).
        index: the digit; negative indices count from the end.
        mean, std: the normalisation to undo.

    Returns:
        dict: ``index`` (non-negative), ``label``, ``mean`` and ``max`` pixel, ``ink_pixels`` (above 0.5)
        and ``ink_box`` ``(top, left, bottom, right)`` or None without ink.
    """
    n = len(labels)
    if not -n <= index < n:
        raise IndexError(f"index {index} is outside 0..{n - 1}")
    pixels = unnormalize(images[index], mean, std).squeeze()
    ink = pixels > 0.5
    rows, cols = ink.nonzero(as_tuple=True)
    return {
        "index": index % n,
        "label": int(labels[index]),
        "mean": round(pixels.mean().item(), 4),
        "max": round(pixels.max().item(), 4),
        "ink_pixels": int(ink.sum()),
        "ink_box": (int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())) if len(rows) else None,
    }


def digit_browser(images: torch.Tensor, labels: torch.Tensor, *, mean: float = 0.0, std: float = 1.0, index: int = 0):
    """A slider over the dataset showing each digit with its label and pixel statistics (chapter 2).

    Args:
        images, labels: the dataset, as for :func:`digit_card`.
        mean, std: the normalisation to undo for display.
        index: the digit shown first.

    Returns:
        ipywidgets.VBox: the slider, the picture and the statistics.
    """
    import ipywidgets as w

    slider = w.IntSlider(value=index, min=0, max=len(labels) - 1, description="index", continuous_update=False)
    picture = w.Image(format="png", width=224, height=224)
    stats = w.HTML()

    def render(_change=None):
        card = digit_card(images, labels, slider.value, mean=mean, std=std)
        picture.value = figure_png(show_image(images[card["index"]], f"label {card['label']}", mean=mean, std=std))
        stats.value = "<code>" + ", ".join(f"{k}={v}" for k, v in card.items() if k != "index") + "</code>"

    slider.observe(render, names="value")
    render()
    return w.VBox([slider, picture, stats])


def conv_report(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> str:
    """The output-size formula filled in with numbers, or what is wrong with the settings (chapter 5).

    Args:
        size, kernel_size, stride, padding, dilation: as for :func:`~mnist_course.shapes.output_size`.

    Returns:
        str: the worked formula ending in the output size, or ``"no output: "`` and the reason.
    """
    try:
        out = output_size(size, kernel_size, stride, padding, dilation)
    except ValueError as exc:
        return f"no output: {exc}"
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    exact = "" if span % stride == 0 else f" (floor of {span / stride:.2f})"
    return (
        f"floor(({size} + 2*{padding} - {dilation}*({kernel_size}-1) - 1) / {stride}) + 1 = "
        f"floor({span}/{stride}){exact} + 1 = {out}"
    )


def conv_calculator(size: int = 28, kernel_size: int = 5, stride: int = 1, padding: int = 2, dilation: int = 1):
    """Sliders for input size, kernel, stride, padding and dilation, showing the formula and grid (chapter 5).

    Args:
        size, kernel_size, stride, padding, dilation: the sliders' starting values.

    Returns:
        ipywidgets.VBox: the sliders, :func:`conv_report`'s formula and
        :func:`~mnist_course.viz.plot_conv_windows`' grid.
    """
    import ipywidgets as w

    sliders = {
        "size": w.IntSlider(value=size, min=1, max=32, description="input"),
        "kernel_size": w.IntSlider(value=kernel_size, min=1, max=9, description="kernel"),
        "stride": w.IntSlider(value=stride, min=1, max=4, description="stride"),
        "padding": w.IntSlider(value=padding, min=0, max=4, description="padding"),
        "dilation": w.IntSlider(value=dilation, min=1, max=3, description="dilation"),
    }
    for s in sliders.values():
        s.continuous_update = False
    formula = w.HTML()
    picture = w.Image(format="png", width=336)

    def render(_change=None):
        values = {k: s.value for k, s in sliders.items()}
        formula.value = f"<code>{conv_report(**values)}</code>"
        picture.value = figure_png(plot_conv_windows(**values))

    for s in sliders.values():
        s.observe(render, names="value")
    render()
    return w.VBox([*sliders.values(), formula, picture])


def digit_upload(model: torch.nn.Module, *, mean: float | None = None, std: float | None = None):
    """A file-upload box that classifies each uploaded photo of a digit and shows the probabilities (chapter 10).

    Args:
        model: the trained network.
        mean, std: the training data's, passed to :func:`~mnist_course.handwriting.classify`.

    Returns:
        ipywidgets.VBox: the upload button, one result line per file, and a probability plot per
        readable file.
    """
    import ipywidgets as w

    upload = w.FileUpload(accept="image/*", multiple=True, description="Upload digit")
    report = w.HTML("<i>Upload a photo or drawing of one digit.</i>")
    pictures = w.HBox()

    def on_upload(_change=None):
        results = classify(model, uploaded_files(upload.value), mean=mean, std=std)
        report.value = "<br>".join(f"<code>{r}</code>" for r in results)
        pictures.children = [
            w.Image(value=figure_png(plot_probabilities(r.probabilities, r.prepared.image)), format="png", width=420)
            for r in results
            if r.error is None
        ]

    upload.observe(on_upload, names="value")
    return w.VBox([upload, report, pictures])
