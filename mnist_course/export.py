"""Shipping a trained network: one ONNX file that takes pixels and gives probabilities (chapter 15).

Chapter 15 writes each step in plain PyTorch first: the wrapper that puts the normalisation and
the softmax inside the network, ``torch.onnx.export(..., dynamo=True)``, and the check with
onnxruntime. This module is those steps for ``python -m mnist_course export``. Exporting needs
the optional packages onnx, onnxscript and onnxruntime (``pip install "mnist_course[onnx]"``);
reading the exported file needs only onnxruntime, numpy and PIL (see
:mod:`mnist_course.preprocess`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_course.errors import InputError

#: The names of the exported graph's input and output.
INPUT_NAME, OUTPUT_NAME = "pixels", "probabilities"


class Deployable(nn.Module):
    """The network as it ships: ``N x 1 x 28 x 28`` pixels in [0, 1] in, ten probabilities out (chapter 15).

    Args:
        model: the trained network (it expects normalised inputs and returns logits).
        mean: the training data's mean, subtracted first.
        std: the training data's standard deviation, divided by next.
    """

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model((pixels - self.mean) / self.std), dim=1)


def _onnx_modules():
    """onnxruntime (and, through torch.onnx, onnx and onnxscript), or one line saying how to install them."""
    if tuple(int(part) for part in torch.__version__.split(".")[:2]) < (2, 5):
        raise InputError(f"exporting with dynamo=True needs torch 2.5 or newer, this is {torch.__version__}")
    try:
        import onnx  # noqa: F401 - torch.onnx.export(dynamo=True) needs it
        import onnxruntime
        import onnxscript  # noqa: F401 - likewise
    except ImportError as exc:
        raise InputError(
            f"exporting to ONNX needs onnx, onnxscript and onnxruntime ({exc.name} is missing): "
            'pip install "mnist_course[onnx]"'
        ) from None
    return onnxruntime


def export_onnx(model: nn.Module, path: str | Path, *, mean: float, std: float) -> Path:
    """Write ``model``, wrapped in :class:`Deployable`, as an ONNX file with a variable batch size (chapter 15).

    A CPU copy of the model is exported, in ``eval()`` mode: the model itself is left as it is.

    Args:
        model: the trained network.
        path: the ``.onnx`` file to write (an existing file is replaced: check first, as the CLI does).
        mean: the training data's mean.
        std: the training data's standard deviation.

    Returns:
        Path: ``path``.
    """
    _onnx_modules()
    from mnist_course.download import write_atomic

    path = Path(path)
    shipped = Deployable(copy.deepcopy(model).cpu(), mean, std).eval()
    program = torch.onnx.export(
        shipped,
        (torch.zeros(2, 1, 28, 28),),  # two images: with one, the batch size would be fixed at 1
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}},
        verbose=False,
    )
    write_atomic(path, program.model_proto.SerializeToString())
    return path


@dataclass
class OnnxCheck:
    """How an exported file agrees with the network it came from (chapter 15).

    Args:
        images: how many images both ran on.
        max_difference: the largest absolute difference between their probabilities.
        same_predictions: how many images got the same digit from both.
    """

    images: int
    max_difference: float
    same_predictions: int

    @property
    def agrees(self) -> bool:
        """Every prediction the same, and no probability off by more than 1e-5."""
        return self.same_predictions == self.images and self.max_difference <= 1e-5

    def __str__(self) -> str:
        return (
            f"{self.same_predictions:,} of {self.images:,} images get the same digit from ONNX Runtime and "
            f"PyTorch; largest difference between their probabilities {self.max_difference:.1e}"
        )


@torch.no_grad()
def check_onnx(path: str | Path, model: nn.Module, pixels: torch.Tensor, *, mean: float, std: float) -> OnnxCheck:
    """Run the exported file with onnxruntime and the network with PyTorch on the same images (chapter 15).

    Args:
        path: the ``.onnx`` file.
        model: the network it was exported from.
        pixels: ``N x 1 x 28 x 28`` images in [0, 1] (not normalised).
        mean: the training data's mean.
        std: the training data's standard deviation.

    Returns:
        OnnxCheck: the largest difference and the number of identical predictions; PyTorch runs
        on a CPU copy of ``model``, as ONNX Runtime runs here.
    """
    onnxruntime = _onnx_modules()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    pixels = pixels.detach().cpu().float()
    (ort_probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(pixels.numpy())})
    on_cpu = copy.deepcopy(model).cpu().eval()  # like ONNX Runtime here: a GPU's TF32 convolutions would round
    torch_probs = torch.softmax(on_cpu((pixels - mean) / std), dim=1).numpy()
    return OnnxCheck(
        images=len(pixels),
        max_difference=float(np.abs(ort_probs - torch_probs).max()),
        same_predictions=int((ort_probs.argmax(1) == torch_probs.argmax(1)).sum()),
    )
