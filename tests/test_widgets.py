"""mnist_course.widgets: the plain functions behind the chapter 2 and 5 widgets, and the widgets."""

from __future__ import annotations

import pytest
import torch

from mnist_course.widgets import conv_calculator, conv_report, digit_browser, digit_card, digit_upload


@pytest.fixture
def digits():
    images = torch.zeros(3, 1, 28, 28)
    images[1, 0, 5:15, 8:12] = 1.0  # a bar: 10 rows x 4 columns of ink
    images[2, 0, 0, 0] = 0.6
    return (images - 0.1307) / 0.3081, torch.tensor([0, 1, 2])


def test_digit_card_statistics(digits):
    images, labels = digits
    card = digit_card(images, labels, 1, mean=0.1307, std=0.3081)
    assert card == {
        "index": 1,
        "label": 1,
        "mean": round(40 / 784, 4),
        "max": 1.0,
        "ink_pixels": 40,
        "ink_box": (5, 8, 14, 11),
    }
    assert digit_card(images, labels, 0, mean=0.1307, std=0.3081)["ink_box"] is None
    assert digit_card(images, labels, -1, mean=0.1307, std=0.3081)["index"] == 2
    with pytest.raises(IndexError, match=r"outside 0\.\.2"):
        digit_card(images, labels, 3)


def test_conv_report_fills_in_the_formula():
    assert conv_report(28, 5, padding=2).endswith("= 28")
    assert (
        conv_report(10, 3, stride=2) == "floor((10 + 2*0 - 1*(3-1) - 1) / 2) + 1 = floor(7/2) (floor of 3.50) + 1 = 4"
    )
    assert conv_report(4, 7).startswith("no output: the kernel")


def test_digit_browser_updates_when_the_slider_moves(digits):
    images, labels = digits
    box = digit_browser(images, labels, mean=0.1307, std=0.3081)
    slider, picture, stats = box.children
    assert (slider.min, slider.max, slider.value) == (0, 2, 0)
    assert "label=0" in stats.value and picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    before = picture.value
    slider.value = 1
    assert "label=1" in stats.value and "ink_pixels=40" in stats.value
    assert picture.value != before


def test_conv_calculator_updates_its_formula():
    box = conv_calculator(size=10, kernel_size=3, stride=2, padding=1)
    sliders, formula, picture = box.children[:5], box.children[5], box.children[6]
    assert "= 5" in formula.value
    before = picture.value
    sliders[2].value = 1  # stride 1
    assert formula.value.endswith("= 10</code>") and picture.value != before


def test_the_conv_picture_moved_to_viz():
    import mnist_course.widgets as widgets

    assert not hasattr(widgets, "draw_conv"), "now mnist_course.viz.plot_conv_windows"


def test_digit_upload_classifies_each_uploaded_file():
    import datetime as dt
    import io

    from PIL import Image

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    box = digit_upload(model, mean=0.1307, std=0.3081)
    upload, report, pictures = box.children
    assert "Upload a photo" in report.value and pictures.children == ()
    image = torch.full((60, 40), 230, dtype=torch.uint8)
    image[10:50, 18:24] = 20
    png = io.BytesIO()
    Image.fromarray(image.numpy()).save(png, format="PNG")
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    upload.value = (  # as ipywidgets 8 fills it
        {
            "name": "one.png",
            "type": "image/png",
            "size": 1,
            "content": memoryview(png.getvalue()),
            "last_modified": when,
        },
        {"name": "junk.png", "type": "image/png", "size": 4, "content": memoryview(b"junk"), "last_modified": when},
    )
    assert "one.png: " in report.value and "junk.png: " in report.value and "not an image file" in report.value
    assert len(pictures.children) == 1 and pictures.children[0].value[:8] == b"\x89PNG\r\n\x1a\n"
