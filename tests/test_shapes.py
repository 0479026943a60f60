"""mnist_course.shapes: the output-size formula, the shape trace and flatten_size."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from mnist_course.errors import ShapeError
from mnist_course.models import create_model
from mnist_course.shapes import flatten_size, output_size, trace


def test_output_size_matches_pytorch_conv_over_a_grid():
    x = torch.zeros(1, 1, 13, 13)
    for k, s, p, d in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        if 13 + 2 * p < d * (k - 1) + 1:
            continue
        conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        assert conv(x).shape[-1] == output_size(13, k, s, p, d), (k, s, p, d)


@pytest.mark.parametrize("pool", [nn.MaxPool2d, nn.AvgPool2d])
def test_output_size_matches_pytorch_pooling_including_ceil_mode(pool):
    checked = floors = 0
    for size, k, s, p, ceil in itertools.product(range(4, 12), (2, 3, 4), (1, 2, 3), (0, 1, 2), (False, True)):
        if p > k // 2:
            continue  # PyTorch requires padding <= kernel_size / 2
        kwargs = {"dilation": 1} if pool is nn.MaxPool2d else {}
        layer = pool(k, stride=s, padding=p, ceil_mode=ceil, **kwargs)
        got = layer(torch.zeros(1, 1, size, size)).shape[-1]
        assert got == output_size(size, k, s, p, 1, ceil), (size, k, s, p, ceil)
        checked += 1
        floors += (size + 2 * p - k) % s != 0
    assert checked > 200 and floors > 50, "the grid must include sizes where the division is not exact"


def test_output_size_rejects_impossible_settings():
    with pytest.raises(ValueError, match="larger than the padded input"):
        output_size(4, 7)
    with pytest.raises(ValueError, match="stride"):
        output_size(28, 3, stride=0)


def test_trace_table_text_and_html():
    table = trace(create_model("lenet5"))
    assert [r.layer for r in table][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert table[0].output_shape == (1, 6, 28, 28) and table[0].parameters == 156
    text = str(table)
    assert "(1, 16, 5, 5)" in text and "61,706" in text.splitlines()[-1]
    assert "<table>" in table._repr_html_()


def test_trace_restores_train_mode_and_flatten_size_needs_linear():
    model = create_model("pytorch-examples-net").train()
    trace(model)
    assert model.training
    with pytest.raises(ValueError, match="no nn.Linear"):
        flatten_size(nn.Sequential(nn.Conv2d(1, 2, 3)))


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
def test_trace_restores_the_mode_and_removes_its_hooks_when_the_model_fails(start):
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(10, 2)).train(start)  # 784 inputs, not 10
    with pytest.raises(RuntimeError):
        trace(model)
    assert {m.training for m in model.modules()} == {start}
    assert all(not m._forward_hooks for m in model.modules())


def test_trace_names_the_layer_where_shapes_stop_fitting_and_keeps_the_rows():
    """A wrong flatten size: the error names the Linear layer and shows every layer traced before it."""
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(100, 10))
    model.train()
    with pytest.raises(ShapeError) as err:
        trace(model)
    message = str(err.value)
    assert message.startswith("layer 4 (Linear) cannot take input of shape (1, 864): mat1 and mat2 shapes")
    assert [r.name for r in err.value.rows] == ["0", "1", "2", "3"] and err.value.rows[-1].output_shape == (1, 864)
    assert "layers traced before it:" in message and "(1, 6, 12, 12)" in message
    assert isinstance(err.value, RuntimeError) and model.training, "a RuntimeError like torch's; the mode restored"
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules()), "hooks removed"


def test_trace_of_a_wrong_input_shape_names_the_first_layer():
    with pytest.raises(ShapeError, match=r"layer 0 \(Conv2d\) cannot take input of shape \(1, 3, 28, 28\)") as err:
        trace(create_model("lenet5"), (1, 3, 28, 28))
    assert err.value.rows == []


def test_trace_blames_the_forward_code_when_it_fails_between_layers():
    class Viewing(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 5)
            self.fc = nn.Linear(320, 10)

        def forward(self, x):
            return self.fc(self.conv(x).view(-1, 320))  # 4 x 24 x 24 = 2304 values, not a multiple of 320

    with pytest.raises(ShapeError, match=r"the model's forward code after layer conv failed: shape '\[-1, 320\]'"):
        trace(Viewing())


def test_trace_turns_a_value_error_into_a_shape_error_too():
    model = nn.Sequential(nn.Flatten(), nn.BatchNorm2d(4))  # BatchNorm2d raises ValueError for 2-D input
    with pytest.raises(ShapeError, match=r"layer 1 \(BatchNorm2d\) cannot take input of shape \(1, 784\)"):
        trace(model)
