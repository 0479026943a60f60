"""Shared fixtures: small generated MNIST-format data, and the real MNIST fetched once per run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_course.data import TensorData
from mnist_course.download import ensure_mnist, idx_bytes

SMALL_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def make_small_mnist(n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict[str, bytes]:
    """Four IDX files in the MNIST layout, with random pixels and labels."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {name: idx_bytes(a) for name, a in arrays.items()}


@pytest.fixture
def small_mnist() -> tuple[dict[str, bytes], dict[str, str]]:
    """(file bytes, expected SHA-256) of a small generated MNIST."""
    files = make_small_mnist()
    return files, {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST in the default data root, fetched (and verified) once per test run.

    A test that uses it may download MNIST on a fresh machine: mark it ``@pytest.mark.slow``.
    """
    return ensure_mnist().root


@pytest.fixture(scope="session")
def tiny_data() -> tuple[TensorData, TensorData]:
    """A small learnable synthetic task in MNIST's shape: class k has a bright k-th row band."""
    g = torch.Generator().manual_seed(0)

    def make(n):
        labels = torch.arange(n) % 10
        x = torch.randn(n, 1, 28, 28, generator=g) * 0.3
        for k in range(10):
            x[labels == k, :, 2 * k + 4 : 2 * k + 6, :] += 2.0
        return TensorData(x, labels)

    return make(320), make(100)
