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


def test_baselines_flatten_the_image_and_have_their_parameter_counts():
    from mnist_course.models import MLP, SoftmaxRegression

    for model, parameters in ((SoftmaxRegression(), 7_850), (MLP(), 203_530), (MLP(hidden=32), 25_450)):
        assert count_parameters(model) == parameters
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert not any(isinstance(m, nn.Conv2d) for m in MLP().modules())


class _HandWrittenLeNet(nn.Module):
    """Seed 003's LeNet as a reader writes it: named layers, functional ReLU and pooling."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(nn.functional.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(nn.functional.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(nn.functional.relu(self.fc2(nn.functional.relu(self.fc1(x)))))


def test_same_network_matches_a_hand_written_class_to_the_package_one():
    from mnist_course.models import same_network

    mine, reference, images = _HandWrittenLeNet(), create_model("lenet"), torch.randn(5, 1, 28, 28)
    reference.train()
    assert same_network(mine, reference, images)
    assert torch.equal(mine.fc3.weight, reference[-1].weight), "the reference's weights were copied in"
    assert mine.training and reference.training, "both modes are left as they were found"


def test_same_network_is_false_for_another_computation_and_refuses_other_shapes():
    from mnist_course.errors import InputError
    from mnist_course.models import LeNet5, LeNet5Classic, same_network

    images = torch.randn(4, 1, 28, 28)
    assert not same_network(LeNet5(), LeNet5Classic(), images), "same shapes, tanh instead of ReLU"
    with pytest.raises(InputError, match="not the same layers.*compare print"):
        same_network(_HandWrittenLeNet(), create_model("lenet5"), images)
