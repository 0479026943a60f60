"""mnist_course.models: the registry, the seven architectures and their parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_course.models import MODELS, ModelInfo, count_parameters, create_model, model_name
from mnist_course.shapes import flatten_size, trace

#: Every registry model: (trainable parameters, inputs of its first nn.Linear). The one table of
#: parameter counts in the tests; test_cli.py checks `python -m mnist_course models` against it.
EXPECTED = {
    "cnn": (3_761_034, 3136),
    "pytorch-examples-net": (21_840, 320),
    "lenet5": (61_706, 400),
    "lenet": (44_426, 256),
    "convnet-bn": (29_034, 1568),
    "lenet5-1998": (61_706, 400),
    "modern-cnn": (150_698, 1152),
}


def test_registry_has_the_seven_models_with_their_parameter_counts():
    assert {name: info.parameters for name, info in MODELS.items()} == {k: v[0] for k, v in EXPECTED.items()}
    assert list(MODELS) == list(EXPECTED)
    for name, info in MODELS.items():
        assert isinstance(info, ModelInfo) and info.name == name and info.source
        assert isinstance(info.model_factory(), nn.Module)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_maps_a_batch_to_ten_scores_and_has_its_flatten_size(name):
    model = create_model(name)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert flatten_size(model) == EXPECTED[name][1]
    assert model_name(model) == name
    assert trace(model).total_parameters == count_parameters(model) == EXPECTED[name][0]


def test_pytorch_examples_net_returns_log_probabilities():
    out = create_model("pytorch-examples-net").eval()(torch.randn(4, 1, 28, 28))
    assert torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-5)


def test_classic_lenet_uses_tanh_and_average_pooling():
    layers = {type(m) for m in create_model("lenet5-1998").modules()}
    assert nn.Tanh in layers and nn.AvgPool2d in layers and nn.ReLU not in layers and nn.MaxPool2d not in layers


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="lenet5.*modern-cnn"):
        create_model("resnet")


def test_model_name_of_a_model_outside_the_registry_is_its_class_name():
    class Mine(nn.Linear):
        pass

    assert model_name(Mine(2, 2)) == "Mine" and model_name(nn.Linear(2, 2)) == "Linear"


def test_count_parameters_counts_only_trainable_ones():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    assert count_parameters(model) == 8 + 3
    model[0].requires_grad_(False)
    assert count_parameters(model) == 3
