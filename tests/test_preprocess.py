"""mnist_course.preprocess: any image of one digit as MNIST's 28x28 layout, with numpy and PIL only."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_handwriting import _png, bar_image

from mnist_course.errors import DigitImageError
from mnist_course.handwriting import prepare_digit
from mnist_course.preprocess import mnist_image, otsu_threshold, to_grayscale
from mnist_course.sample_digits import make_samples


def test_grayscale_accepts_every_kind_of_input(tmp_path):
    gray = bar_image()
    rgb = np.stack([gray] * 3, axis=-1)
    rgba = np.zeros((120, 90, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(gray < 128, 255, 0)  # black ink on a transparent background
    path = tmp_path / "digit.png"
    Image.fromarray(rgb).save(path)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="JPEG")
    sixteen = Image.fromarray(gray.astype(np.uint16) * 257)
    inputs = {
        "uint8": gray,
        "RGB array": rgb,
        "RGBA array": rgba,
        "path": path,
        "str path": str(path),
        "PIL L": Image.fromarray(gray),
        "PIL RGBA": Image.fromarray(rgba),
        "16-bit": sixteen,
        "jpeg bytes": buffer.getvalue(),
        "float": gray / 255.0,
        "bool": gray < 128,
        "tensor CHW": torch.from_numpy(rgb).permute(2, 0, 1),
    }
    for name, source in inputs.items():
        g = to_grayscale(source)
        assert g.shape == (120, 90) and g.dtype == np.float32 and 0 <= g.min() and g.max() <= 1, name
        ink, paper = g[50, 44], g[5, 5]
        assert abs(ink - paper) > 0.5, name


def test_otsu_separates_two_levels():
    values = np.concatenate([np.full(500, 0.1), np.full(300, 0.8)])
    assert 0.1 < otsu_threshold(values) <= 0.8


def test_the_minimum_size_holds_for_files_and_pil_images_as_for_arrays():
    """The issue's repro: a 2x2 image got a confident answer while a 2x2 array was refused."""
    for source in (_png((2, 2)), Image.new("L", (2, 2)), np.zeros((2, 2), dtype=np.uint8)):
        with pytest.raises(DigitImageError, match="too small to hold a digit: 2x2 pixels"):
            to_grayscale(source)


def test_a_multi_frame_image_is_refused_with_what_to_do(tmp_path):
    frames = [Image.new("L", (28, 28), v) for v in (0, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(DigitImageError, match=r"anim\.gif has 2 frames \(an animation\?\): save the frame"):
        to_grayscale(tmp_path / "anim.gif")


def test_mnist_image_is_prepare_digits_image_before_normalisation():
    for sample in make_samples(1, seed=3):
        image, steps, _ = mnist_image(sample.image)
        prepared = prepare_digit(sample.image, mean=0.5, std=0.25)
        assert image.shape == (28, 28) and image.dtype == np.float32 and np.array_equal(image, prepared.image)
        assert torch.equal(prepared.tensor, ((torch.from_numpy(image) - 0.5) / 0.25).reshape(1, 1, 28, 28))
        assert list(steps) == list(prepared.steps)


def test_the_module_needs_no_torch():
    """Chapter 15's promise: numpy, PIL and onnxruntime are enough to read a digit."""
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import numpy as np\n"
        "from mnist_course.preprocess import mnist_image\n"
        "img = np.zeros((40, 30), dtype=np.uint8); img[8:32, 12:17] = 255\n"
        "image, _, dark = mnist_image(img)\n"
        "print(image.shape, dark, round(float(image.sum()) > 0))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(28, 28) True 1"
