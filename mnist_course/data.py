"""MNIST in PyTorch: datasets, in-memory tensors and loaders, the normalisation, the validation split.

Two data paths are taught in the book (chapter 1):

* the classic one: :func:`mnist_datasets` gives ``torchvision.datasets.MNIST`` objects with
  ``ToTensor`` + ``Normalize`` transforms, for a ``DataLoader``;
* the fast one: :func:`load_tensors` decodes a whole split once into a normalised tensor
  (optionally on the GPU) and :class:`TensorLoader` cuts it into shuffled batches.

Both start from :func:`~mnist_course.download.ensure_mnist`. :func:`train_val_split` holds out
a fixed validation set from the 60,000 training images (chapter 4), for the choices a chapter makes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mnist_course.download import ensure_mnist
from mnist_course.errors import InputError

#: Size of the validation split held out of the 60,000 training images (see :func:`train_val_split`).
VALIDATION_SIZE = 5_000


@lru_cache(maxsize=8)
def _stats(root: str) -> tuple[float, float]:
    from torchvision.datasets import MNIST

    pixels = MNIST(root, train=True, download=False).data.to(torch.float64) / 255
    return pixels.mean().item(), pixels.std().item()


def normalization_stats(root: str | os.PathLike | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the training pixels in [0, 1] (chapter 1).

    Computed from the data (about 0.1307 and 0.3081), not typed in.

    Args:
        root: the data root; default :func:`~mnist_course.download.default_root`.

    Returns:
        tuple[float, float]: ``(mean, std)``.
    """
    report = ensure_mnist(root)
    return _stats(str(report.root))


def mnist_datasets(root: str | os.PathLike | None = None, *, normalize: bool = True, train_transform=None):
    """The training and test sets as ``torchvision.datasets.MNIST`` objects (chapter 1).

    Args:
        root: the data root; default :func:`~mnist_course.download.default_root`.
        normalize: add ``Normalize`` with :func:`normalization_stats` after ``ToTensor``.
        train_transform: replaces the training set's transform (for augmentation).

    Returns:
        tuple: ``(train, test)`` datasets of ``(1x28x28 float tensor, int label)`` samples, for a
        ``torch.utils.data.DataLoader``.
    """
    from torchvision import transforms
    from torchvision.datasets import MNIST

    report = ensure_mnist(root)
    steps = [transforms.ToTensor()]
    if normalize:
        mean, std = normalization_stats(report.root)
        steps.append(transforms.Normalize((mean,), (std,)))
    transform = transforms.Compose(steps)
    train = MNIST(report.root, train=True, download=False, transform=train_transform or transform)
    test = MNIST(report.root, train=False, download=False, transform=transform)
    return train, test


def check_labels(labels: torch.Tensor, num_classes: int = 10, name: str = "labels") -> None:
    """The one rule for labels everywhere: classes ``0 .. num_classes - 1`` (chapter 6).

    Args:
        labels: class indices.
        num_classes: how many classes (the ten digits by default).
        name: what the tensor is, for the message.

    Raises :class:`~mnist_course.errors.InputError` for any other value.
    """
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"{name} must be classes 0..{num_classes - 1}, got values {labels.min()}..{labels.max()}")


@dataclass
class TensorData:
    """A whole split in memory: ``images`` (N x 1 x 28 x 28 float) and ``labels`` (N, int64) (chapter 1).

    ``data[:1000]`` or ``data[indices]`` is a :class:`TensorData` of those examples.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise InputError(
                f"TensorData needs one label per image: images {tuple(self.images.shape)}, "
                f"labels {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> TensorData:
        if isinstance(index, int):
            index = slice(index, index + 1 or None)
        return TensorData(self.images[index], self.labels[index])

    def to(self, device) -> TensorData:
        """Both tensors moved to ``device``."""
        return TensorData(self.images.to(device), self.labels.to(device))


def load_tensors(
    train: bool = True,
    root: str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = None,
    normalize: bool = True,
    limit: int | None = None,
) -> TensorData:
    """One split as a single tensor, normalised like the DataLoader path (chapter 1).

    Args:
        train: the 60,000 training images, else the 10,000 test images.
        root: the data root; default :func:`~mnist_course.download.default_root`.
        device: move the tensors there once, so training never waits on data loading.
        normalize: subtract the mean and divide by the std of :func:`normalization_stats`.
        limit: keep only the first ``limit`` examples (for quick runs).

    Returns:
        TensorData: the images (N x 1 x 28 x 28 float32) and labels (N, int64).
    """
    from torchvision.datasets import MNIST

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    report = ensure_mnist(root)
    ds = MNIST(report.root, train=train, download=False)
    images, labels = ds.data[:limit], ds.targets[:limit]
    x = images.unsqueeze(1).to(torch.float32) / 255
    if normalize:
        mean, std = normalization_stats(report.root)
        x = (x - mean) / std
    data = TensorData(x, labels.clone())
    return data.to(device) if device is not None else data


def train_val_split(data, val_size: int = VALIDATION_SIZE, *, seed: int = 0):
    """Hold out a fixed, random validation set from the training data (chapter 4).

    The same ``val_size`` examples are held out every time (a permutation drawn from its own
    generator seeded with ``seed``), whatever the device, so choices made on them are
    repeatable and the test set is left for the final figure.

    Args:
        data: the training split: a :class:`TensorData` or a map-style ``Dataset``.
        val_size: how many examples to hold out.
        seed: seed of the permutation; change it only to study the split itself.

    Returns:
        tuple: ``(train, validation)``, two :class:`TensorData` (or two ``Subset`` of a ``Dataset``).
    """
    n = len(data)
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be between 1 and {n - 1} for {n} examples, got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train_idx, val_idx = order[val_size:].sort().values, order[:val_size].sort().values
    if isinstance(data, TensorData):
        return data[train_idx.to(data.labels.device)], data[val_idx.to(data.labels.device)]
    return Subset(data, train_idx.tolist()), Subset(data, val_idx.tolist())


class TensorLoader:
    """Batches from in-memory tensors, the fast path's ``DataLoader`` (chapter 1).

    Args:
        data: the examples.
        batch_size: examples per batch (the last batch may be smaller).
        shuffle: draw a new permutation each epoch.
        seed: seed of the loader's own generator; None draws from the global torch RNG, like
            ``DataLoader``.
        drop_last: leave out a last, smaller batch.

    ``state_dict``/``load_state_dict`` save the generator, so that a resumed run sees the same batches.
    """

    def __init__(
        self,
        data: TensorData,
        batch_size: int = 64,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    @property
    def dataset(self) -> TensorData:
        """The examples, as ``DataLoader.dataset``."""
        return self.data

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffle:
            order = torch.randperm(len(self.data), generator=self.generator).to(self.data.labels.device)
        for i in range(len(self)):
            part = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = order[part] if self.shuffle else part
            yield self.data.images[idx], self.data.labels[idx]

    def state_dict(self) -> dict:
        """The shuffling generator's state."""
        return {"generator": self.generator.get_state() if self.generator is not None else None}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])


def as_batches(data, batch_size: int = 1000):
    """Anything the book trains on, as an iterable of ``(images, labels)`` batches (chapter 6).

    Args:
        data: a ``DataLoader``, a :class:`TensorLoader` or a list of batches (returned as is), or
            a :class:`TensorData` or map-style ``Dataset`` (cut into batches, in order).
        batch_size: the batch size for the latter two.

    Returns:
        An iterable of ``(images, labels)`` batches.
    """
    if isinstance(data, TensorData):
        return TensorLoader(data, batch_size)
    if isinstance(data, Dataset):
        return DataLoader(data, batch_size=batch_size)
    return data
