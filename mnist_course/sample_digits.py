"""Digit images made by code, to test preprocessing like real photos and drawings (chapter 10).

Each sample is drawn as pen strokes (a rough skeleton per digit, jittered) or rendered from one
of the fonts that ship with matplotlib, then placed off-centre on a canvas of random size,
rotated, thickened or thinned, blurred and noised — mostly dark ink on light "paper", some
chalk-on-blackboard, some with a transparent background, some 16-bit. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: One rough pen path per digit, in a unit box (x right, y down); 8 is drawn as two loops.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.5 + 0.36 * np.sin(t), 0.5 - 0.46 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 25)]],
    1: [[(0.38, 0.2), (0.58, 0.04), (0.52, 0.96)]],
    2: [[(0.15, 0.25), (0.3, 0.08), (0.6, 0.05), (0.8, 0.2), (0.75, 0.42), (0.2, 0.94), (0.88, 0.93)]],
    3: [
        [
            (0.15, 0.12),
            (0.6, 0.04),
            (0.8, 0.2),
            (0.62, 0.42),
            (0.38, 0.48),
            (0.7, 0.56),
            (0.84, 0.76),
            (0.6, 0.95),
            (0.14, 0.88),
        ]
    ],
    4: [[(0.62, 0.96), (0.62, 0.04), (0.1, 0.66), (0.88, 0.66)]],
    5: [[(0.82, 0.05), (0.28, 0.05), (0.22, 0.45), (0.55, 0.38), (0.8, 0.55), (0.8, 0.8), (0.55, 0.96), (0.14, 0.88)]],
    6: [
        [
            (0.72, 0.04),
            (0.36, 0.3),
            (0.2, 0.66),
            (0.34, 0.94),
            (0.66, 0.93),
            (0.8, 0.7),
            (0.6, 0.5),
            (0.32, 0.55),
            (0.22, 0.7),
        ]
    ],
    7: [[(0.1, 0.08), (0.88, 0.08), (0.42, 0.96)]],
    8: [
        [(0.5 + 0.27 * np.sin(t), 0.27 - 0.23 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 17)],
        [(0.5 + 0.33 * np.sin(t), 0.73 - 0.25 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 17)],
    ],
    9: [[(0.78, 0.34), (0.56, 0.08), (0.3, 0.1), (0.2, 0.32), (0.4, 0.5), (0.72, 0.42), (0.78, 0.34), (0.72, 0.96)]],
}

FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSerif-Italic.ttf",
)


@dataclass
class Sample:
    """A generated digit image, its label and how it was made (chapter 10)."""

    image: Image.Image
    label: int
    style: str


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def _glyph(digit: int, rng: np.random.Generator, size: int, kind: str) -> Image.Image:
    """White ink on black, tightly around the digit, in a square of about ``size`` pixels."""
    canvas = Image.new("L", (size * 2, size * 2), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "pen":
        width = max(2, int(size * rng.uniform(0.06, 0.16)))
        aspect = rng.uniform(0.55, 0.8)
        for path in STROKES[digit]:
            pts = [
                ((x + rng.normal(0, 0.025)) * size * aspect + size / 2, (y + rng.normal(0, 0.025)) * size + size / 2)
                for x, y in path
            ]
            draw.line(pts, fill=255, width=width, joint="curve")
            r = width / 2
            for x, y in (pts[0], pts[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    else:
        font = _font(FONT_FILES[rng.integers(len(FONT_FILES))], size)
        draw.text(
            (size / 2, size / 2),
            str(digit),
            font=font,
            fill=255,
            stroke_width=int(rng.integers(0, max(2, size // 14))),
            stroke_fill=255,
        )
    angle = rng.uniform(-14, 14)
    shear = rng.uniform(-0.25, 0.25)
    canvas = canvas.transform(
        canvas.size, Image.Transform.AFFINE, (1, shear, -shear * size, 0, 1, 0), resample=Image.Resampling.BILINEAR
    )
    canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR)
    return canvas.crop(canvas.getbbox())


def make_sample(digit: int, rng: np.random.Generator) -> Sample:
    """One generated photo-like image of ``digit`` (chapter 10).

    Args:
        digit: the digit to draw, 0-9.
        rng: the random generator; it decides every choice.

    Returns:
        Sample: the PIL image, the label and its style (``"pen"`` or ``"font"``, and the background).
    """
    kind = "pen" if rng.random() < 0.6 else "font"
    w, h = int(rng.integers(90, 320)), int(rng.integers(90, 320))
    glyph = _glyph(digit, rng, int(min(w, h) * rng.uniform(0.35, 0.7)), kind)
    glyph.thumbnail((int(w * 0.9), int(h * 0.9)))
    ink = np.zeros((h, w), dtype=np.float32)
    x = int(rng.integers(0, w - glyph.width + 1))
    y = int(rng.integers(0, h - glyph.height + 1))
    glyph = glyph.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.4)))
    ink[y : y + glyph.height, x : x + glyph.width] = np.asarray(glyph, dtype=np.float32) / 255
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    style = rng.choice(["paper", "paper", "paper", "blackboard", "transparent", "16-bit"])
    if style == "blackboard":
        background = 0.12 + 0.05 * xx + rng.normal(0, 0.03, (h, w))
        gray = np.clip(background + 0.75 * ink, 0, 1)
    else:
        paper = rng.uniform(0.78, 0.97) - 0.12 * (xx * rng.random() + yy * rng.random())
        background = paper + rng.normal(0, rng.uniform(0.005, 0.04), (h, w))
        gray = np.clip(background * (1 - ink) + rng.uniform(0.05, 0.3) * ink, 0, 1)
    if style == "16-bit":
        image = Image.fromarray((gray * 65535).astype(np.uint16))
    elif style == "transparent":
        rgba = np.zeros((h, w, 4), dtype=np.uint8)
        rgba[..., :3] = rng.integers(0, 60, 3)
        rgba[..., 3] = (np.clip(ink * 1.2, 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(rgba)
    else:
        tint = rng.uniform(0.85, 1.0, 3)
        image = Image.fromarray((np.clip(gray[..., None] * tint, 0, 1) * 255).astype(np.uint8))
    return Sample(image, digit, f"{kind}, {style}")


def make_samples(per_digit: int = 6, seed: int = 0) -> list[Sample]:
    """``per_digit`` generated images of each digit 0-9, reproducible from ``seed`` (chapter 10).

    Args:
        per_digit: images per digit.
        seed: seeds the generator.

    Returns:
        list[Sample]: ``10 * per_digit`` samples, the digits 0-9 in turn.
    """
    rng = np.random.default_rng(seed)
    return [make_sample(d, rng) for _ in range(per_digit) for d in range(10)]
