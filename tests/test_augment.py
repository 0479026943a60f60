"""mnist_course.augment: random affine transforms of whole batches, and the augmenting loader."""

from __future__ import annotations

import torch

from mnist_course.augment import AugmentedLoader, random_affine
from mnist_course.data import TensorLoader


def test_random_affine_keeps_shape_and_background():
    images = torch.full((8, 1, 28, 28), -0.4242)
    images[:, :, 10:18, 12:16] = 2.8
    out = random_affine(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and not torch.allclose(out, images)
    assert torch.allclose(out[:, :, 0, 0], torch.full((8, 1), -0.4242)), "the border stays background"
    same = random_affine(images, degrees=0, translate=0, scale=(1.0, 1.0))
    assert torch.allclose(same, images, atol=1e-5)


def test_augmented_loader_is_reproducible_and_resumable(tiny_data):
    train, _ = tiny_data
    a = AugmentedLoader(TensorLoader(train, 64, shuffle=True, seed=1), seed=2)
    b = AugmentedLoader(TensorLoader(train, 64, shuffle=True, seed=1), seed=2)
    assert len(a) == 5
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b, strict=True))
    state = a.state_dict()
    first = [x for x, _ in a]
    a.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(first, (x for x, _ in a), strict=True))


def test_augmented_loader_keeps_labels_and_passes_options(tiny_data):
    train, _ = tiny_data
    plain = TensorLoader(train, 64)
    still = AugmentedLoader(plain, degrees=0, translate=0, scale=(1.0, 1.0))
    for (x, y), (raw_x, raw_y) in zip(still, plain, strict=True):
        assert torch.equal(y, raw_y) and torch.allclose(x, raw_x, atol=1e-5)
    assert AugmentedLoader([(train.images[:3], train.labels[:3])]).state_dict()["loader"] is None
