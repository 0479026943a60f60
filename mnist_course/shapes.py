"""A tracer that shows every layer's output shape, and the features entering the first ``nn.Linear`` (chapter 5)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mnist_course.device import device_of, eval_mode
from mnist_course.errors import ShapeError, first_line
from mnist_course.table import html_table, text_table


@dataclass
class LayerShape:
    """One row of a :class:`ShapeTrace`: a layer, its output shape and its own parameters (chapter 5)."""

    name: str
    layer: str
    output_shape: tuple[int, ...]
    parameters: int


class ShapeTrace(list):
    """The rows of :func:`trace`; prints as a text table and shows as HTML in notebooks (chapter 5)."""

    def __init__(self, rows, input_shape):
        super().__init__(rows)
        self.input_shape = tuple(input_shape)

    @property
    def total_parameters(self) -> int:
        return sum(r.parameters for r in self)

    def _cells(self):
        head = ("layer", "type", "output shape", "parameters")
        body = [("input", "", str(self.input_shape), "")]
        body += [(r.name, r.layer, str(r.output_shape), f"{r.parameters:,}") for r in self]
        body.append(("total", "", "", f"{self.total_parameters:,}"))
        return head, body

    def __str__(self) -> str:
        return text_table(*self._cells(), right=(3,))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return html_table(*self._cells())


def _shape_error(exc: Exception, entered, finished: int, names, done: ShapeTrace) -> ShapeError:
    """A :class:`~mnist_course.errors.ShapeError` naming where shapes stopped fitting, with the rows traced before."""
    if len(entered) > finished:  # a layer started and did not finish: it is the one
        module, shape = entered[-1]
        where = f"layer {names.get(module, '?')} ({type(module).__name__}) cannot take input of shape {shape}"
    else:  # every layer that started finished: the model's own forward code failed between layers
        after = f" after layer {names.get(entered[-1][0], '?')}" if entered else ""
        where = f"the model's forward code{after} failed"
    return ShapeError(f"{where}: {first_line(exc)}\nlayers traced before it:\n{done}", rows=list(done))


def trace(model: nn.Module, input_shape=(1, 1, 28, 28)) -> ShapeTrace:
    """Run a zero tensor of ``input_shape`` through ``model`` and record each leaf layer (chapter 5).

    Returns a :class:`ShapeTrace` (a list of :class:`LayerShape`) in execution order, so the
    flatten size before the first Linear layer can be read off instead of worked out.

    The model runs once in ``eval()`` mode, without gradients, on its own device; its mode is restored.

    Args:
        model: the network.
        input_shape: the shape of the zero input, batch dimension included.

    Returns:
        ShapeTrace: one :class:`LayerShape` per leaf layer, in execution order. A layer that cannot
        take its input raises :class:`~mnist_course.errors.ShapeError` naming it, with the rows so far.
    """
    rows: list[LayerShape] = []
    names = {module: name for name, module in model.named_modules()}
    entered: list[tuple[nn.Module, tuple]] = []
    finished = [0]
    hooks = []

    def enter(module, inputs):
        entered.append((module, tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else ()))

    def record(module, _inputs, output):
        finished[0] += 1
        if isinstance(output, torch.Tensor):
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerShape(names[module], type(module).__name__, tuple(output.shape), params))

    for module in model.modules():
        if not list(module.children()):
            hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(record)]
    try:
        with torch.no_grad(), eval_mode(model):
            model(torch.zeros(input_shape, device=device_of(model)))
    except (RuntimeError, ValueError) as exc:
        raise _shape_error(exc, entered, finished[0], names, ShapeTrace(rows, input_shape)) from None
    finally:
        for h in hooks:
            h.remove()
    return ShapeTrace(rows, input_shape)


def flatten_size(model: nn.Module, input_shape=(1, 1, 28, 28)) -> int:
    """Number of features entering the first ``nn.Linear`` layer of ``model`` (chapter 5).

    Args:
        model: the network.
        input_shape: the input's shape, as for :func:`trace`.

    Returns:
        int: the product of the preceding layer's output shape without the batch dimension;
        ``ValueError`` if no ``nn.Linear`` follows another layer.
    """
    rows = trace(model, input_shape)
    for before, row in zip(rows, rows[1:], strict=False):
        if row.layer == "Linear":
            return math.prod(before.output_shape[1:])
    raise ValueError(f"{type(model).__name__} has no nn.Linear layer after another layer")
