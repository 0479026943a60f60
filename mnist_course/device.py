"""Where a model runs, and how a run is made repeatable (chapter 6).

The book's one device rule: a function that is given a model runs on **the model's device**
(:func:`device_of`); a function that creates a model (``build_run``, the benchmarks, the command
line) puts it on the ``device`` you pass, else on :func:`pick_device` (CUDA, else Apple's MPS,
else the CPU). ``create_model`` and the model classes give a CPU model, as ``nn.Module`` does.
"""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """The best device here, or the one asked for after checking it exists (chapter 6).

    Args:
        preferred: ``"cuda"``, ``"mps"``, ``"cpu"`` (or a ``torch.device``); None picks CUDA if
            present, else Apple's MPS, else the CPU.

    Returns:
        torch.device: the device. Asking for a GPU that is not there raises ``ValueError``.
    """
    if preferred is not None:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {preferred!r} was asked for, but no CUDA GPU is available; use 'cpu'")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"device {preferred!r} was asked for, but Apple MPS is not available; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps") if _mps_available() else torch.device("cpu")


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a model without any (chapter 6).

    Args:
        model: any module.

    Returns:
        torch.device: where the model's weights are.
    """
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def describe_device(device: str | torch.device) -> str:
    """One line naming the hardware behind ``device`` and the torch version (chapter 6).

    Args:
        device: a device name or ``torch.device``.

    Returns:
        str: e.g. ``"CPU: x86_64, 2 threads of 2 cores (torch 2.14.1)"``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"CUDA GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB (torch {torch.__version__})"
    if device.type == "mps":
        return f"Apple MPS GPU on {platform.machine()} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    return f"CPU: {cpu}, {torch.get_num_threads()} threads of {os.cpu_count()} cores (torch {torch.__version__})"


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively, so bf16 autocast can pay off (chapter 12).

    CUDA: what ``torch.cuda.is_bf16_supported`` says, emulation not counted (e.g. a T4). CPU:
    whether oneDNN finds bf16 instructions (AVX512-BF16 or AMX); without them bf16 is emulated
    and slower than float32.

    Args:
        device: a device name or ``torch.device``.

    Returns:
        bool: True only with native support.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:  # torch >= 2.3 would otherwise count slow emulation (e.g. a T4) as support
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # an older or differently built torch: assume not
            return False
    return False


def seed_everything(seed: int) -> None:
    """Seed every random generator a training run draws from (chapter 3).

    Python's ``random``, NumPy's global generator and torch's (``torch.manual_seed`` seeds the
    CPU and every CUDA device). Loaders with their own generator (``TensorLoader(seed=...)``,
    ``DataLoader(generator=...)``) are seeded separately.

    Args:
        seed: any integer.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    was_training = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was_training)


def eval_mode(model: nn.Module):
    """``with eval_mode(model):`` runs the block in ``eval()`` mode, then restores the mode it found (chapter 6).

    The mode is restored even when the block raises. Dropout and BatchNorm behave as at test
    time inside it.

    Args:
        model: any module.

    Returns:
        A context manager that yields ``model``.
    """
    return _mode(model, False)


def train_mode(model: nn.Module):
    """``with train_mode(model):`` runs the block in ``train()`` mode, then restores the mode it found (chapter 6).

    Args:
        model: any module.

    Returns:
        A context manager that yields ``model``.
    """
    return _mode(model, True)
