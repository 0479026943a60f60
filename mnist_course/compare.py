"""Training models under one budget and comparing them fairly (chapters 5 and 6).

A :class:`Budget` fixes everything but the model: epochs, batch size, optimizer, learning-rate
schedule and seed. :func:`train_under_budget` trains one model with it on the in-memory data
and measures what a comparison needs; :class:`Results` shows the rows as a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from mnist_course.data import TensorData, TensorLoader
from mnist_course.evaluate import as_batches
from mnist_course.models import count_parameters
from mnist_course.table import html_table, text_table
from mnist_course.train import History, fit, pick_device, seed_everything


@dataclass(frozen=True)
class Budget:
    """The training recipe shared by every model in a comparison (chapter 5).

    ``optimizer`` is ``"adam"`` (betas 0.9 and ``beta2``) or ``"sgd"`` (momentum 0.9, Nesterov);
    ``schedule`` is ``"onecycle"`` (warm up to ``lr`` over the first ``warmup`` fraction of the
    steps, then anneal the ``"cos"`` or ``"linear"`` way, stepped per batch) or ``"constant"``.
    ``label_smoothing`` > 0 softens the cross-entropy targets (chapter 10).
    """

    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adam"
    schedule: str = "onecycle"
    seed: int = 0
    warmup: float = 0.3
    anneal: str = "cos"
    beta2: float = 0.999
    label_smoothing: float = 0.0

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in ("onecycle", "constant"):
            raise ValueError(f"schedule must be 'onecycle' or 'constant', got {self.schedule!r}")
        if self.anneal not in ("cos", "linear"):
            raise ValueError(f"anneal must be 'cos' or 'linear', got {self.anneal!r}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"epochs and batch_size must be >= 1 and lr > 0, got {self}")
        if not (0 < self.warmup < 1 and 0 <= self.beta2 < 1 and 0 <= self.label_smoothing < 1):
            raise ValueError(f"warmup must be in (0, 1), beta2 and label_smoothing in [0, 1), got {self}")

    def with_(self, **changes) -> Budget:
        """A copy with some fields changed, e.g. ``budget.with_(optimizer="sgd", lr=0.05)``."""
        return replace(self, **changes)

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with this budget's label smoothing (chapters 5 and 10)."""
        return F.cross_entropy(output, target, label_smoothing=self.label_smoothing)


def make_optimizer(model: nn.Module, budget: Budget, steps_per_epoch: int, *, fused: bool = False):
    """The optimizer and scheduler a :class:`Budget` describes, for ``model`` (chapter 5).

    Returns ``(optimizer, scheduler or None)``; the scheduler steps once per batch. ``fused``
    asks for the single-kernel optimizer step (chapter 10); a torch too old for it on this
    device silently gets the usual one.
    """
    if budget.optimizer == "adam":
        cls, kwargs = torch.optim.Adam, {"lr": budget.lr, "betas": (0.9, budget.beta2)}
    else:
        cls, kwargs = torch.optim.SGD, {"lr": budget.lr, "momentum": 0.9, "nesterov": True}
    optimizer = None
    if fused:
        try:
            optimizer = cls(model.parameters(), fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):  # fused needs torch >= 2.4 on CPU
            optimizer = None
    if optimizer is None:
        optimizer = cls(model.parameters(), **kwargs)
    scheduler = None
    if budget.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=budget.lr,
            epochs=budget.epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=budget.warmup,
            anneal_strategy=budget.anneal,
        )
    return optimizer, scheduler


@torch.no_grad()
def throughput(model: nn.Module, data, *, device=None, repeats: int = 1) -> float:
    """Inference speed in images per second over ``data`` in ``eval()`` mode (chapter 6)."""
    device = pick_device(device)
    was_training = model.training
    model.eval()
    batches = [(x.to(device), y) for x, y in as_batches(data)]
    model(batches[0][0])  # warm-up: first-call allocations and kernel selection
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        for x, _ in batches:
            model(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    model.train(was_training)
    return repeats * sum(len(y) for _, y in batches) / seconds


@dataclass
class Result:
    """One trained model of a comparison (chapters 5 and 6)."""

    name: str
    parameters: int
    test_accuracy: float
    train_seconds: float
    images_per_second: float
    history: History = field(repr=False)
    model: nn.Module = field(repr=False)


def train_under_budget(
    name: str,
    factory: Callable[[], nn.Module],
    train: TensorData,
    test: TensorData,
    budget: Budget,
    *,
    device=None,
    progress: bool = True,
) -> Result:
    """Seed, build a model with ``factory``, train it with ``budget`` and measure it (chapter 5).

    The model is created after seeding, so its initial weights are part of the budget too.
    ``factory`` is a class or function, e.g. ``LeNet5`` or ``lambda: LeNet5(activation=nn.Tanh)``.
    The data should already be on ``device`` (see :func:`~mnist_course.data.load_tensors`).
    """
    device = pick_device(device)
    seed_everything(budget.seed)
    model = factory().to(device)
    loader = TensorLoader(train, budget.batch_size, shuffle=True, seed=budget.seed)
    optimizer, scheduler = make_optimizer(model, budget, len(loader))
    history = fit(
        model,
        loader,
        test,
        optimizer=optimizer,
        epochs=budget.epochs,
        scheduler=scheduler,
        scheduler_interval="batch",
        loss_fn=budget.loss_fn,
        device=device,
        progress=progress,
    )
    return Result(
        name=name,
        parameters=count_parameters(model),
        test_accuracy=history.epochs[-1]["test_accuracy"],
        train_seconds=history.train_seconds,
        images_per_second=throughput(model, test, device=device),
        history=history,
        model=model,
    )


class Results(list):
    """A list of :class:`Result` that shows as a table (chapters 5 and 6)."""

    def best(self) -> Result:
        return max(self, key=lambda r: r.test_accuracy)

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self:
                if r.name == key:
                    return r
            raise KeyError(f"no result named {key!r}; have: {', '.join(r.name for r in self)}")
        return super().__getitem__(key)

    def _cells(self):
        head = ("model", "parameters", "test accuracy", "train time", "images/s (inference)")
        rows = [
            (
                r.name,
                f"{r.parameters:,}",
                f"{r.test_accuracy:.2%}",
                f"{r.train_seconds:.1f} s",
                f"{r.images_per_second:,.0f}",
            )
            for r in self
        ]
        return head, rows

    def __str__(self) -> str:
        return text_table(*self._cells(), right=(1, 2, 3, 4))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return html_table(*self._cells())
