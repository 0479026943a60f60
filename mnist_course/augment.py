"""Data augmentation on whole batches: small random rotations, shifts and zooms (chapter 12).

Done with ``affine_grid``/``grid_sample`` on the batch's own device, so it costs a fraction of
a training step instead of a per-image PIL transform.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    *,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: tuple[float, float] = (0.9, 1.1),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rotate by up to ``degrees``, shift by up to ``translate`` of the size, zoom within ``scale`` (chapter 12).

    Each image of the ``N x C x H x W`` batch gets its own random transform. Pixels that come
    from outside the image repeat the border, i.e. the background, whatever the normalisation.

    Args:
        images: the ``N x C x H x W`` batch, on any device.
        degrees: the largest rotation, either way.
        translate: the largest shift, as a fraction of the image size, along each axis.
        scale: the range of the zoom factor.
        generator: the random generator (CPU), for reproducible transforms.

    Returns:
        torch.Tensor: the transformed batch, same shape, device and dtype.
    """
    n = images.shape[0]
    rand = torch.rand(n, 4, generator=generator)
    angle = (rand[:, 0] * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + rand[:, 1] * (scale[1] - scale[0])
    shift = (rand[:, 2:] * 2 - 1) * translate * 2  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


class AugmentedLoader:
    """Wraps a batch loader and augments every training batch with ``random_affine`` (chapter 12)."""

    def __init__(self, loader, seed: int = 0, **affine):
        self.loader = loader
        self.affine = affine
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            yield random_affine(images, generator=self.generator, **self.affine), labels

    def state_dict(self) -> dict:
        inner = self.loader.state_dict() if hasattr(self.loader, "state_dict") else None
        return {"generator": self.generator.get_state(), "loader": inner}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        if state.get("loader") is not None and hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(state["loader"])
