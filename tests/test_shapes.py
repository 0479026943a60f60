"""mnist_course.shapes: the shape trace and flatten_size."""

from __future__ import annotations

import pytest
from torch import nn

from mnist_course.errors import ShapeError
from mnist_course.models import create_model
from mnist_course.shapes import flatten_size, trace


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
