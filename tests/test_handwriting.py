"""mnist_course.handwriting: the MNIST-style model input of any digit image, and classifying it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_course.handwriting import (
    DigitImageError,
    classify,
    predict_digit,
    prepare_digit,
)

MEAN, STD = 0.1307, 0.3081


def bar_image(h=120, w=90, dark_ink=True, top=30, left=40, height=50, width=10) -> np.ndarray:
    """A vertical bar (a "1") on a plain background, uint8 gray."""
    img = np.full((h, w), 230 if dark_ink else 20, dtype=np.uint8)
    img[top : top + height, left : left + width] = 20 if dark_ink else 230
    return img


@pytest.mark.parametrize("dark_ink", [True, False])
def test_prepare_digit_makes_mnist_layout(dark_ink):
    prepared = prepare_digit(bar_image(dark_ink=dark_ink), mean=MEAN, std=STD)
    img = prepared.image
    assert prepared.tensor.shape == (1, 1, 28, 28) and img.shape == (28, 28)
    assert prepared.dark_background == (not dark_ink)
    assert img[0].max() == 0 and img[:, 0].max() == 0, "white ink on black"
    rows, cols = np.nonzero(img > 0.1)
    assert rows.max() - rows.min() + 1 == 20, "the longer side of the ink is 20 pixels"
    assert cols.max() - cols.min() + 1 <= 6, "aspect ratio kept (a 5:1 bar stays thin)"
    cy = (img.sum(1) * np.arange(28)).sum() / img.sum()
    cx = (img.sum(0) * np.arange(28)).sum() / img.sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5, "centre of mass at pixel (14, 14), as in MNIST"
    assert torch.allclose(prepared.tensor[0, 0], (torch.from_numpy(img) - MEAN) / STD)
    assert list(prepared.steps) == [
        "grayscale",
        "white ink on black",
        "cleaned",
        "cropped",
        "20x20 box",
        "28x28, centred",
    ]


def test_bad_inputs_get_clear_errors(tmp_path):
    blank = np.full((100, 100), 200, dtype=np.uint8)
    with pytest.raises(DigitImageError, match="no ink found"):
        prepare_digit(blank)
    noisy_blank = (np.random.default_rng(0).normal(0.8, 0.01, (100, 100))).clip(0, 1).astype(np.float32)
    with pytest.raises(DigitImageError, match="no ink found"):
        prepare_digit(noisy_blank)
    two = np.full((100, 300), 230, dtype=np.uint8)
    two[20:80, 30:40] = 10
    two[20:80, 250:260] = 10
    with pytest.raises(DigitImageError, match="2 separate marks far apart.*several digits"):
        prepare_digit(two)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DigitImageError, match="not an image file PIL can read"):
        prepare_digit(tmp_path / "notes.png")
    with pytest.raises(DigitImageError, match="no such file"):
        prepare_digit(tmp_path / "missing.png")
    for bad, message in [
        (np.array(["a", "b"]), "must hold numbers"),
        (np.zeros((2, 3, 4, 5)), "must be H x W"),
        (np.zeros(100), "must be H x W"),
        (np.zeros((4, 4)), "too small"),
        (np.full((20, 20), 3.0), r"values in \[0, 1\]"),
        ({"image": 1}, "cannot read a digit"),
    ]:
        with pytest.raises(DigitImageError, match=message):
            prepare_digit(bad)


def test_a_digit_in_two_strokes_is_one_digit():
    five = np.full((120, 100), 230, dtype=np.uint8)
    five[20:26, 30:70] = 10  # the top bar of a 5, a small gap away from the body
    five[30:90, 30:36] = 10
    five[60:66, 30:70] = 10
    prepare_digit(five, mean=MEAN, std=STD)


def test_classify_reports_errors_per_file():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    buffer = io.BytesIO()
    Image.fromarray(bar_image()).save(buffer, format="PNG")
    results = classify(model, [("good.png", buffer.getvalue()), ("bad.png", b"junk")], mean=MEAN, std=STD)
    assert results[0].error is None and 0 <= results[0].digit <= 9
    assert torch.isclose(results[0].probabilities.sum(), torch.tensor(1.0))
    assert "good.png: " in str(results[0]) and "then" in str(results[0])
    assert results[1].digit is None and "not an image file" in str(results[1])


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
def test_predict_digit_runs_in_eval_mode_and_restores_the_mode(start):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(784, 10)).train(start)
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    digit, probs = predict_digit(model, bar_image(), mean=MEAN, std=STD)
    assert modes == [False] and model.training is start
    assert 0 <= digit <= 9 and probs.shape == (10,) and int(probs.argmax()) == digit
    prepared = prepare_digit(bar_image(), mean=MEAN, std=STD)
    again, same = predict_digit(model, prepared)
    assert again == digit and torch.allclose(same, probs), "dropout is off: the same answer twice"

    def broken(module, args):
        raise RuntimeError("forward exploded")

    model.register_forward_pre_hook(broken)
    with pytest.raises(RuntimeError, match="forward exploded"):
        predict_digit(model, prepared)
    assert model.training is start


def _png(size, value=255) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_decompression_bomb_is_one_image_error_and_the_others_still_classify(tmp_path, monkeypatch):
    from mnist_course.models import create_model

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # any image over 2,000 pixels counts as a bomb
    (tmp_path / "huge.png").write_bytes(_png((100, 100)))
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    results = classify(
        create_model("lenet5"), [("huge.png", tmp_path / "huge.png"), ("one", digit)], mean=MEAN, std=STD
    )
    assert "too large to open safely" in results[0].error and results[0].digit is None
    assert results[1].error is None and results[1].digit in range(10)
