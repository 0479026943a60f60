"""MNIST-style preprocessing of one digit's image, with numpy and PIL only (chapters 10 and 15).

MNIST digits are white ink on black, anti-aliased, scaled so the longer side of the ink fits
20 pixels (aspect ratio kept), and placed in a 28x28 frame so that their centre of mass is in
the middle. :func:`mnist_image` does the same to any image of one digit. This module imports
neither torch nor the rest of the package's training code, so a program that ships an exported
model (chapter 15) needs only numpy, PIL and onnxruntime to read a digit.
"""

from __future__ import annotations

import io
import os
from collections import deque
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_course.errors import DigitImageError

#: The smallest image side that can hold a digit, for every kind of input (files, PIL images, arrays).
MIN_SIDE = 8


def to_grayscale(source) -> np.ndarray:
    """Any image as a float32 array in [0, 1] (0 = black), whatever its type and mode (chapter 10).

    Accepts a PIL image, a path or bytes of an image file, or a 2-D (gray) or 3-D
    (``H x W x 3`` RGB / ``H x W x 4`` RGBA) array of uint8, uint16, bool or floats in [0, 1].
    Transparent pixels are laid over a background that contrasts with the opaque ink.

    Args:
        source: the image, in any of the forms above (a torch tensor is read like an array).

    Returns:
        np.ndarray: ``H x W`` float32 in [0, 1]; unreadable input raises :class:`DigitImageError`.
    """
    if isinstance(source, (str, os.PathLike, bytes, bytearray)):
        image = _open(source)
    elif isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray) or hasattr(source, "detach"):  # an array, or a torch tensor
        return _array_to_gray(np.asarray(source.detach().cpu() if hasattr(source, "detach") else source))
    else:
        raise DigitImageError(
            f"cannot read a digit from {type(source).__name__}: pass a PIL image, a file path, file bytes, "
            "or a 2-D/3-D numpy array"
        )
    _check_image(image, getattr(image, "filename", "") or "the image")
    image = ImageOps.exif_transpose(image)  # photos from phones are often stored rotated
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return np.clip(array / top, 0, 1).astype(np.float32)
    if image.mode == "F":
        return _array_to_gray(np.asarray(image, dtype=np.float32))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return _array_to_gray(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _too_small(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise DigitImageError(f"the image is too small to hold a digit: {width}x{height} pixels")


def _check_image(image: Image.Image, name: str) -> None:
    """One picture, at least :data:`MIN_SIDE` pixels a side: the same rules as for arrays.

    A phone's JPEG often carries extra frames (MPO: previews, depth): its first frame is the
    photo. Other images with several frames (GIF, APNG, WebP, TIFF) are refused.
    """
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise DigitImageError(f"{name} has {frames} frames (an animation?): save the frame with the digit as a PNG")
    _too_small(*image.size)


def _open(source) -> Image.Image:
    name = "the given bytes" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        data = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source)
        image = Image.open(data)
        image.load()
    except FileNotFoundError:
        raise DigitImageError(f"no such file: {name}") from None
    except UnidentifiedImageError:
        raise DigitImageError(f"{name} is not an image file PIL can read (PNG, JPEG, ...)") from None
    except Image.DecompressionBombError as exc:
        raise DigitImageError(f"{name} is too large to open safely ({exc}); scale it down first") from None
    except OSError as exc:
        raise DigitImageError(f"{name} could not be read as an image: {exc}") from None
    return image


def _image_shaped(array: np.ndarray) -> np.ndarray:
    """``H x W`` or ``H x W x 3|4`` (channels-first tensors moved last), at least 8 pixels a side."""
    if array.dtype.kind not in "uifb":
        raise DigitImageError(f"an image array must hold numbers, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channels first (a torch-style C x H x W tensor)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise DigitImageError(
            f"an image array must be H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA), got shape {array.shape}"
        )
    _too_small(array.shape[1], array.shape[0])
    return array


def _unit_range(array: np.ndarray) -> np.ndarray:
    """Pixel values as float32 in [0, 1], from bool, uint8, uint16, other integers or floats."""
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype.kind in "ui":
        top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, max(float(array.max()), 1.0))
        return array.astype(np.float32) / top
    scaled = array.astype(np.float32)
    if np.isnan(scaled).any() or scaled.min() < 0 or scaled.max() > 1:
        raise DigitImageError("a float image array must hold values in [0, 1] (no NaN)")
    return scaled


def _array_to_gray(array: np.ndarray) -> np.ndarray:
    scaled = _unit_range(_image_shaped(array))
    if scaled.ndim == 2:
        return scaled
    gray = scaled[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if scaled.shape[-1] == 4:
        alpha = scaled[..., 3]
        opaque = alpha > 0.5
        ink_is_dark = opaque.any() and gray[opaque].mean() < 0.5
        backdrop = 1.0 if ink_is_dark else 0.0
        gray = alpha * gray + (1 - alpha) * backdrop
    return gray.astype(np.float32)


def otsu_threshold(values: np.ndarray) -> float:
    """The threshold that best separates values in [0, 1] into two classes (Otsu, 1979) (chapter 10).

    Args:
        values: pixel values in [0, 1], any shape; counted in a 256-bin histogram.

    Returns:
        float: the upper edge of the bin that maximises the between-class variance.
    """
    hist, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    p = hist / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return float(edges[int(np.argmax(between)) + 1])


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Connected ink regions (8-neighbourhood) as ``(area, top, left, bottom, right)``."""
    seen = np.zeros_like(mask, dtype=bool)
    found = []
    h, w = mask.shape
    for r0, c0 in zip(*np.nonzero(mask), strict=True):
        if seen[r0, c0]:
            continue
        seen[r0, c0] = True
        queue, area, top, left, bottom, right = deque([(r0, c0)]), 0, r0, c0, r0, c0
        while queue:
            r, c = queue.popleft()
            area += 1
            top, left, bottom, right = min(top, r), min(left, c), max(bottom, r), max(right, c)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        found.append((area, top, left, bottom, right))
    return sorted(found, reverse=True)


def _box_gap(a, b) -> int:
    """Pixels between two boxes (0 when they touch or overlap)."""
    dy = max(a[1] - b[3], b[1] - a[3], 0)
    dx = max(a[2] - b[4], b[2] - a[4], 0)
    return max(dx, dy)


def _white_ink(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """White ink on black with the background level removed, and whether the background was dark."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    dark_background = background < 0.5
    ink = gray if dark_background else 1.0 - gray
    ink = np.clip(ink - (background if dark_background else 1.0 - background), 0, 1)
    if float(ink.max()) < 0.15:
        raise DigitImageError("no ink found: the image is blank (or its contrast is far too low)")
    return ink, dark_background


def _marks(mask: np.ndarray) -> tuple[list, int]:
    """The ink's marks found on a grid of at most 96 pixels a side (fast), specks ignored, close marks merged.

    Returns the groups of marks (a "5" has two strokes) and the grid's downscaling factor.
    """
    factor = max(1, int(np.ceil(max(mask.shape) / 96)))
    small = mask[: mask.shape[0] // factor * factor, : mask.shape[1] // factor * factor]
    small = small.reshape(small.shape[0] // factor, factor, small.shape[1] // factor, factor).any(axis=(1, 3))
    parts = _components(small)
    if not parts:
        raise DigitImageError("no ink found: the image is blank (or its contrast is far too low)")
    significant = [p for p in parts if p[0] >= 0.15 * parts[0][0]]
    height = max(p[3] - p[1] + 1 for p in significant)
    groups: list[list] = []
    for part in significant:
        near = [g for g in groups if any(_box_gap(part, q) <= 0.35 * height for q in g)]
        merged = [part] + [q for g in near for q in g]
        groups = [g for g in groups if g not in near] + [merged]
    return groups, factor


def _crop_digit(cleaned: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    """The bounding box of the one digit's ink (several marks far apart are refused)."""
    groups, factor = _marks(mask)
    if len(groups) > 1:
        raise DigitImageError(
            f"found {len(groups)} separate marks far apart: this looks like several digits. "
            "Crop the image to a single digit and try again."
        )
    top = min(p[1] for p in groups[0]) * factor
    left = min(p[2] for p in groups[0]) * factor
    bottom = min((max(p[3] for p in groups[0]) + 1) * factor, mask.shape[0])
    right = min((max(p[4] for p in groups[0]) + 1) * factor, mask.shape[1])
    box = cleaned[top:bottom, left:right]
    rows, cols = np.nonzero(box >= threshold)
    return box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _centre(resized: np.ndarray) -> np.ndarray:
    """Place the 20-pixel digit in 28x28 with its centre of mass at MNIST's (14, 14) (measured in chapter 10)."""
    canvas = np.zeros((28, 28), dtype=np.float32)
    total = resized.sum()
    cy = (resized.sum(1) * np.arange(resized.shape[0])).sum() / total
    cx = (resized.sum(0) * np.arange(resized.shape[1])).sum() / total
    oy = int(np.clip(round(14.0 - cy), 0, 28 - resized.shape[0]))
    ox = int(np.clip(round(14.0 - cx), 0, 28 - resized.shape[1]))
    canvas[oy : oy + resized.shape[0], ox : ox + resized.shape[1]] = resized
    return canvas


def mnist_image(source) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
    """Preprocess a photo or drawing of one digit the way MNIST was made, up to normalisation (chapters 10 and 15).

    1. grayscale; 2. make the ink white on black (the background is the median of the border);
    3. remove the background level and faint noise (Otsu threshold) and stretch the contrast;
    4. crop to the ink's bounding box (small specks ignored); 5. scale the longer side to 20
    pixels, keeping the aspect ratio (PIL's area-averaging ``BOX`` filter); 6. place in 28x28
    with the centre of mass in the middle.

    Args:
        source: anything :func:`to_grayscale` reads.

    Returns:
        tuple: ``(image, steps, dark_background)``: the 28x28 float32 image in [0, 1], every
        intermediate step by name, and whether the input's background was dark. A blank image,
        several marks far apart (several digits?) or unreadable input raise
        :class:`~mnist_course.errors.DigitImageError`.
    """
    steps = {"grayscale": to_grayscale(source)}
    ink, dark_background = _white_ink(steps["grayscale"])
    steps["white ink on black"] = ink
    threshold = max(otsu_threshold(ink[ink > 0.02]) if (ink > 0.02).sum() > 10 else 0.5, 0.1)
    mask = ink >= threshold
    cleaned = np.where(ink >= threshold / 2, ink, 0.0)
    steps["cleaned"] = np.clip(cleaned / float(np.percentile(cleaned[mask], 95)), 0, 1)
    box = steps["cropped"] = _crop_digit(steps["cleaned"], mask, threshold)
    scale = 20.0 / max(box.shape)
    size = (max(1, round(box.shape[1] * scale)), max(1, round(box.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(box.astype(np.float32)).resize(size, Image.Resampling.BOX))
    steps["20x20 box"] = np.clip(resized, 0, 1)
    steps["28x28, centred"] = _centre(steps["20x20 box"])
    return steps["28x28, centred"], steps, dark_background
