"""mnist_course.device: the device rule, device_of, bf16 support, seeding, and the mode context managers."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from mnist_course import device as dev
from mnist_course.device import (
    describe_device,
    device_of,
    eval_mode,
    native_bf16,
    pick_device,
    seed_everything,
    train_mode,
)
from mnist_course.models import create_model


@pytest.fixture
def no_gpu(monkeypatch):
    """Neither CUDA nor Apple's MPS, whatever this machine has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)


def test_pick_device_without_a_gpu_is_the_cpu(no_gpu):
    assert pick_device() == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="Apple MPS is not available"):
        pick_device("mps")


def test_pick_device_prefers_cuda_then_mps(monkeypatch, no_gpu):
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    assert pick_device() == torch.device("mps") and pick_device("mps") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == torch.device("cuda"), "CUDA first, even with MPS there"
    assert pick_device("cuda:0") == torch.device("cuda:0")
    assert pick_device("cpu") == torch.device("cpu"), "a device asked for wins"


def test_pick_device_on_this_machine():
    expected = "cuda" if torch.cuda.is_available() else "mps" if dev._mps_available() else "cpu"
    assert pick_device().type == expected


def test_describe_device_names_the_cpu():
    line = describe_device("cpu")
    assert line.startswith("CPU: ") and "threads" in line and f"torch {torch.__version__}" in line
    assert describe_device(torch.device("cpu")) == line


def test_device_of_follows_parameters_then_buffers():
    assert device_of(nn.Linear(2, 2)) == torch.device("cpu")
    assert device_of(nn.ReLU()) == torch.device("cpu"), "no parameters: the CPU"
    assert device_of(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    only_buffers = nn.BatchNorm1d(3, affine=False).to("meta")
    assert next(only_buffers.parameters(), None) is None and device_of(only_buffers) == torch.device("meta")


def test_native_bf16_counts_only_native_support(monkeypatch):
    assert isinstance(native_bf16("cpu"), bool) and native_bf16("meta") is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16("cuda") is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert native_bf16("cuda") is False, "emulated bf16 (e.g. on a T4) does not count"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert native_bf16("cuda") is True


def test_seed_everything_makes_runs_repeat():
    seed_everything(5)
    a = torch.rand(3), create_model("lenet5").state_dict()["0.weight"], random.random(), np.random.rand()
    seed_everything(5)
    b = torch.rand(3), create_model("lenet5").state_dict()["0.weight"], random.random(), np.random.rand()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2:] == b[2:]


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))


def _modes(model: nn.Module) -> set[bool]:
    return {m.training for m in model.modules()}


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
@pytest.mark.parametrize("context, inside", [(eval_mode, False), (train_mode, True)], ids=["eval_mode", "train_mode"])
def test_mode_context_managers_restore_the_mode(context, inside, start):
    model = _net().train(start)
    with context(model) as given:
        assert given is model and _modes(model) == {inside}
    assert _modes(model) == {start}


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
@pytest.mark.parametrize("context, inside", [(eval_mode, False), (train_mode, True)], ids=["eval_mode", "train_mode"])
def test_mode_context_managers_restore_the_mode_on_exceptions(context, inside, start):
    model = _net().train(start)
    with pytest.raises(KeyError, match="inside"):
        with context(model):
            assert _modes(model) == {inside}
            raise KeyError("inside")
    assert _modes(model) == {start}
