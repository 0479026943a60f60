"""The book's models: two baselines, the five source tutorials' architectures, LeNet-5 (1998), a modern CNN.

Every layer is an ``nn.Module`` (pooling, flattening and dropout included), so
:func:`mnist_course.shapes.trace` can show each step. All models take ``N x 1 x 28 x 28``
input and return 10 scores per image: logits, except :class:`PyTorchExamplesNet`, which
returns log-probabilities like the original. ``F.cross_entropy`` is correct for both,
because ``log_softmax`` of log-probabilities is unchanged (chapter 6 checks this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mnist_course.device import eval_mode
from mnist_course.errors import InputError


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (chapter 4).

    Args:
        model: any module.

    Returns:
        int: the sum of ``numel()`` over parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SoftmaxRegression(nn.Sequential):
    """The simplest classifier: one Linear layer from the 784 pixels to 10 scores (chapter 4).

    Multinomial logistic regression; with ``F.cross_entropy`` the softmax is in the loss.
    7,850 parameters. The baseline every later model must beat.
    """

    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(28 * 28, 10))


class MLP(nn.Sequential):
    """A multi-layer perceptron: 784 pixels -> ``hidden`` ReLU units -> 10 scores (chapter 4).

    No convolution: every pixel has its own weight into every hidden unit, so the network
    knows nothing of which pixels are neighbours. 203,530 parameters with ``hidden=256``.

    Args:
        hidden: width of the hidden layer.
    """

    def __init__(self, hidden: int = 256):
        super().__init__(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10))


class CNN(nn.Sequential):
    """Seed 000's CNN: two 3x3 conv/ReLU/max-pool blocks and three Linear layers (chapter 6).

    ``conv(1->32) -> pool -> conv(32->64) -> pool`` leaves 64 x 7 x 7 = 3136 features, then
    ``3136 -> 1024 -> 512 -> 10``. 3,761,034 parameters, almost all in the first Linear layer.
    """

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 1024),
            nn.ReLU(),
            nn.Linear(1024, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )


class PyTorchExamplesNet(nn.Sequential):
    """Seed 001's ``Net``, the classic pytorch/examples MNIST model (chapter 7).

    ``conv(1->10, 5) -> pool -> ReLU -> conv(10->20, 5) -> Dropout2d -> pool -> ReLU`` leaves
    20 x 4 x 4 = 320 features, then ``320 -> 50 -> dropout -> 10`` and ``log_softmax(dim=1)``
    (the seed forgot ``dim``). 21,840 parameters.
    """

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.Dropout2d(0.5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(320, 50),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(50, 10),
            nn.LogSoftmax(dim=1),
        )


class LeNet5(nn.Sequential):
    """Seed 002's LeNet-5: padding 2 turns 28x28 into the paper's 32x32 (chapter 7).

    ``conv(1->6, 5, pad 2) -> ReLU -> pool -> conv(6->16, 5) -> ReLU -> pool`` leaves
    16 x 5 x 5 = 400 features, then ``400 -> 120 -> 84 -> 10`` with ReLU between the Linear
    layers (the seed left them out, which collapses the three into one linear map; chapter 11).
    61,706 parameters.
    """

    def __init__(self, activation: Callable[[], nn.Module] = nn.ReLU, pool: type[nn.Module] = nn.MaxPool2d):
        super().__init__(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),
            activation(),
            pool(2),
            nn.Conv2d(6, 16, kernel_size=5),
            activation(),
            pool(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            activation(),
            nn.Linear(120, 84),
            activation(),
            nn.Linear(84, 10),
        )


class LeNet5Classic(LeNet5):
    """LeNet-5 as in LeCun et al. (1998): tanh and average pooling (chapter 7).

    Simplified the usual way: the paper's trainable subsampling weights, partial C3
    connections and RBF output layer become plain average pooling, full connections and a
    Linear layer. Same shapes and 61,706 parameters as :class:`LeNet5`.
    """

    def __init__(self):
        super().__init__(activation=nn.Tanh, pool=nn.AvgPool2d)


class LeNet(nn.Sequential):
    """Seed 003's LeNet without padding (chapter 7).

    ``conv(1->6, 5) -> ReLU -> pool -> conv(6->16, 5) -> ReLU -> pool`` on 28x28 leaves
    16 x 4 x 4 = 256 features, then ``256 -> 120 -> 84 -> 10``. 44,426 parameters.
    """

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 6, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )


def conv_bn_relu(c_in: int, c_out: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (no bias: BatchNorm has one) -> BatchNorm -> ReLU, the modern building block (chapter 8).

    Args:
        c_in, c_out: input and output channels.
        kernel_size: an odd size keeps the height and width (padding ``kernel_size // 2``).

    Returns:
        nn.Sequential: the three layers.
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class ConvNetBN(nn.Sequential):
    """Seed 004's ConvNet on 1-channel input: two conv(5, pad 2)/BatchNorm/ReLU/pool blocks (chapter 8).

    16 then 32 channels leave 32 x 7 x 7 = 1568 features for one Linear layer. The seed read
    the images as RGB (3 input channels) for a grayscale task; here the input has 1 channel.
    29,034 parameters.
    """

    def __init__(self):
        super().__init__(
            nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 10),
        )


class ModernCNN(nn.Sequential):
    """The book's best-accuracy model: five conv/BatchNorm/ReLU blocks, max-pooling, dropout (chapter 8).

    ``28x28x1 -> 32, 32 -> pool -> 64, 64 -> pool -> 128 -> pool`` leaves 128 x 3 x 3 = 1152
    features, then dropout and one Linear layer. With augmentation it is the model the
    best-accuracy recipe trains.
    """

    def __init__(self, dropout: float = 0.25):
        super().__init__(
            conv_bn_relu(1, 32),
            conv_bn_relu(32, 32),
            nn.MaxPool2d(2),
            conv_bn_relu(32, 64),
            conv_bn_relu(64, 64),
            nn.MaxPool2d(2),
            conv_bn_relu(64, 128),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(128 * 3 * 3, 10),
        )


@dataclass(frozen=True)
class ModelInfo:
    """A registry entry (chapter 8).

    Args:
        name: the name the CLI and chapter 8 use.
        model_factory: the class.
        source: where the architecture comes from.
    """

    name: str
    model_factory: Callable[[], nn.Module]
    source: str

    @property
    def parameters(self) -> int:
        """Trainable parameters of a fresh model."""
        return count_parameters(self.model_factory())


#: Every model of the book, by the name the CLI and chapter 8 use.
MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo("cnn", CNN, "seed 000: two conv blocks, three Linear layers"),
        ModelInfo("pytorch-examples-net", PyTorchExamplesNet, "seed 001: pytorch/examples Net, dropout, log_softmax"),
        ModelInfo("lenet5", LeNet5, "seed 002: LeNet-5, padding 2, ReLU, max-pool"),
        ModelInfo("lenet", LeNet, "seed 003: LeNet without padding"),
        ModelInfo("convnet-bn", ConvNetBN, "seed 004: conv/BatchNorm blocks, 1-channel input"),
        ModelInfo("lenet5-1998", LeNet5Classic, "LeCun et al. 1998: tanh, average pooling"),
        ModelInfo("modern-cnn", ModernCNN, "the book's best-accuracy model: conv/BatchNorm/ReLU x5"),
    )
}


def create_model(name: str) -> nn.Module:
    """A fresh, randomly initialised model from :data:`MODELS` by name (chapter 8).

    Args:
        name: a key of :data:`MODELS`, e.g. ``"lenet5"``.

    Returns:
        nn.Module: the model, on the CPU.
    """
    try:
        return MODELS[name].model_factory()
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


def model_name(model: nn.Module) -> str:
    """The registry name of ``model``'s class, or its class name if it is not in the registry (chapter 9).

    Args:
        model: any module.

    Returns:
        str: e.g. ``"lenet5"``.
    """
    for info in MODELS.values():
        if type(model) is info.model_factory:
            return info.name
    return type(model).__name__


def same_network(model: nn.Module, reference: nn.Module, images: torch.Tensor) -> bool:
    """Whether ``model`` is the same network as ``reference``, whatever its layers are named (chapters 4, 6 to 8).

    The chapters write each model as a ``class ...(nn.Module)`` with ``forward``; the package
    has it as an ``nn.Sequential``. The parameter and buffer names differ (``conv1.weight``
    vs ``0.weight``), so the reference's tensors are copied into ``model`` in order (a
    ``load_state_dict`` round trip), and both must then give the same outputs on ``images``
    (in eval mode, which both are left in as they were found).

    Args:
        model: the network to check; its weights are overwritten with the reference's.
        reference: the network it should equal.
        images: a batch to compare the outputs on.

    Returns:
        bool: True when every tensor has the reference's shape and the outputs agree
        (``torch.allclose``, atol 1e-6).

    Raises:
        InputError: the two state dicts hold different numbers or shapes of tensors.
    """
    mine, theirs = model.state_dict(), reference.state_dict()
    shapes = [tuple(t.shape) for t in mine.values()], [tuple(t.shape) for t in theirs.values()]
    if shapes[0] != shapes[1]:
        raise InputError(
            f"not the same layers: {type(model).__name__} has tensors of shapes {shapes[0]}, "
            f"{type(reference).__name__} has {shapes[1]}; compare print(model) with print(reference)"
        )
    model.load_state_dict(dict(zip(mine, theirs.values(), strict=True)))
    with eval_mode(model), eval_mode(reference), torch.no_grad():
        return torch.allclose(model(images), reference(images), atol=1e-6, rtol=0)
