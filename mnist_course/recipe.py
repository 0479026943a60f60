"""A training recipe in one dataclass, and the one function that turns it into a run (chapters 7 and 8).

A :class:`Budget` fixes everything but the model: epochs, batch size, optimizer, learning-rate
schedule, seed, loss, augmentation and the speed levers of chapter 12. :func:`build_run` seeds,
builds the model, the loader, the optimizer and the schedule from it, always in that order;
:func:`train_under_budget` trains the run and measures what a fair comparison needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mnist_course.augment import AugmentedLoader
from mnist_course.data import TensorData, TensorLoader
from mnist_course.device import native_bf16, pick_device, seed_everything
from mnist_course.history import History
from mnist_course.models import count_parameters
from mnist_course.table import html_table, text_table
from mnist_course.train import fit

#: The allowed values of the :class:`Budget` fields that are names.
CHOICES = {"optimizer": ("adam", "sgd"), "schedule": ("onecycle", "constant"), "anneal": ("cos", "linear")}


@dataclass(frozen=True)
class Budget:
    """The training recipe shared by every model in a comparison (chapter 7).

    Args:
        epochs: passes over the training data.
        batch_size: examples per step.
        lr: the learning rate (the peak of a one-cycle schedule).
        optimizer: ``"adam"`` (betas 0.9 and ``beta2``) or ``"sgd"`` (momentum 0.9, Nesterov).
        schedule: ``"onecycle"`` (warm up to ``lr`` over the first ``warmup`` fraction of the
            steps, then anneal; stepped per batch) or ``"constant"``.
        seed: seeds the weights, the shuffling and the augmentation.
        warmup: fraction of the steps spent warming up.
        anneal: ``"cos"`` or ``"linear"`` decay after the warm-up.
        beta2: Adam's second-moment decay.
        label_smoothing: softens the cross-entropy targets (chapter 12).
        augment: random rotations, shifts and zooms of every batch (chapter 12).
        channels_last: the channels-last memory layout (chapter 12).
        bf16: bf16 autocast where the hardware computes it natively (chapter 12).
        fused: the single-kernel optimizer step, where this torch has it (chapter 12).
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
    augment: bool = False
    channels_last: bool = False
    bf16: bool = False
    fused: bool = False

    def __post_init__(self):
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        checks = {
            "epochs >= 1": self.epochs >= 1,
            "batch_size >= 1": self.batch_size >= 1,
            "lr > 0": self.lr > 0,
            "0 < warmup < 1": 0 < self.warmup < 1,
            "0 <= beta2 < 1": 0 <= self.beta2 < 1,
            "0 <= label_smoothing < 1": 0 <= self.label_smoothing < 1,
        }
        broken = [rule for rule, ok in checks.items() if not ok]
        if broken:
            raise ValueError(f"Budget needs {', '.join(broken)}; got {self}")

    def with_(self, **changes) -> Budget:
        """A copy with some fields changed, e.g. ``budget.with_(optimizer="sgd", lr=0.05)``."""
        return replace(self, **changes)

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with this budget's label smoothing (chapters 7 and 12)."""
        return F.cross_entropy(output, target, label_smoothing=self.label_smoothing)


def make_optimizer(model: nn.Module, budget: Budget, steps_per_epoch: int):
    """The optimizer and scheduler a :class:`Budget` describes, for ``model`` (chapter 7).

    Args:
        model: whose parameters to optimise.
        budget: the recipe. With ``fused``, a torch too old for the fused step on this device
            silently gets the usual one.
        steps_per_epoch: batches per epoch, for the one-cycle plan.

    Returns:
        tuple: ``(optimizer, scheduler or None)``; the scheduler steps once per batch.
    """
    if budget.optimizer == "adam":
        cls, kwargs = torch.optim.Adam, {"lr": budget.lr, "betas": (0.9, budget.beta2)}
    else:
        cls, kwargs = torch.optim.SGD, {"lr": budget.lr, "momentum": 0.9, "nesterov": True}
    try:
        optimizer = cls(model.parameters(), **kwargs, **({"fused": True} if budget.fused else {}))
    except (RuntimeError, TypeError, ValueError):  # fused needs torch >= 2.4 on CPU
        optimizer = cls(model.parameters(), **kwargs)
    if budget.schedule == "constant":
        return optimizer, None
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=budget.lr,
        epochs=budget.epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=budget.warmup,
        anneal_strategy=budget.anneal,
    )
    return optimizer, scheduler


def make_loader(data, budget: Budget):
    """Shuffled training batches of ``data`` as the budget says (chapter 7).

    Args:
        data: a :class:`~mnist_course.data.TensorData` (a seeded ``TensorLoader``), a map-style
            ``Dataset`` (a ``DataLoader`` with a seeded generator), or a loader, used as it is.
        budget: batch size, seed and augmentation.

    Returns:
        A loader of ``(images, labels)`` batches.
    """
    if isinstance(data, TensorData):
        loader = TensorLoader(data, budget.batch_size, shuffle=True, seed=budget.seed)
    elif isinstance(data, Dataset):
        generator = torch.Generator().manual_seed(budget.seed)
        loader = DataLoader(data, batch_size=budget.batch_size, shuffle=True, generator=generator)
    else:
        loader = data
    return AugmentedLoader(loader, seed=budget.seed) if budget.augment else loader


@dataclass
class Run:
    """A model with its loader, optimizer and schedule, ready to train (chapter 7).

    Args:
        model: the network, on its device.
        loader: the training batches.
        optimizer: the optimizer over the model's parameters.
        scheduler: the per-batch schedule, or None.
        budget: the recipe it was built from.
        autocast: the mixed-precision dtype, or None for float32.
    """

    model: nn.Module
    loader: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    budget: Budget
    autocast: torch.dtype | None = None

    def fit(self, eval_data=None, **kwargs) -> History:
        """Train with :func:`~mnist_course.train.fit` and this run's parts.

        Args:
            eval_data: evaluated after every epoch.
            kwargs: more arguments of ``fit``; ``epochs`` defaults to the budget's.

        Returns:
            History: the run's history.
        """
        kwargs.setdefault("epochs", self.budget.epochs)
        return fit(
            self.model,
            self.loader,
            eval_data,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            loss_fn=self.budget.loss_fn,
            autocast=self.autocast,
            **kwargs,
        )

    def fit_until(self, eval_data, target: float | None = None, log=None) -> History:
        """Train epoch by epoch, stopping once the accuracy on ``eval_data`` reaches ``target`` (chapter 12).

        Args:
            eval_data: evaluated after every epoch.
            target: the accuracy to stop at; None trains every epoch.
            log: called with one line per epoch, e.g. ``print``.

        Returns:
            History: the epochs trained.
        """
        history = History()
        for epoch in range(1, self.budget.epochs + 1):
            self.fit(eval_data, epochs=epoch, history=history, progress=False)
            if log is not None:
                log(
                    f"epoch {epoch}/{self.budget.epochs}: accuracy {history.last.eval_accuracy:.2%} "
                    f"({history.train_seconds:.0f} s so far)"
                )
            if target is not None and history.last.eval_accuracy >= target:
                break
        return history


def build_run(model_factory: Callable[[], nn.Module], data, budget: Budget, *, device=None) -> Run:
    """Seed, then build the model, the loader, the optimizer and the schedule of a training run (chapter 7).

    The model is created after seeding, so its initial weights are part of the budget too.

    Args:
        model_factory: a class or function, e.g. ``LeNet5`` or ``lambda: LeNet5(activation=nn.Tanh)``.
        data: the training data, as :func:`make_loader` takes it (already on ``device`` for speed).
        budget: the recipe.
        device: where the model goes; default :func:`~mnist_course.device.pick_device`.

    Returns:
        Run: ready for ``run.fit(eval_data)``.
    """
    device = pick_device(device)
    seed_everything(budget.seed)
    model = model_factory().to(device)
    if budget.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = make_loader(data, budget)
    optimizer, scheduler = make_optimizer(model, budget, len(loader))
    autocast = torch.bfloat16 if budget.bf16 and native_bf16(device) else None
    return Run(model, loader, optimizer, scheduler, budget, autocast)


@dataclass
class Result:
    """One trained model of a comparison (chapters 7 and 8).

    Args:
        name: the row's label.
        parameters: trainable parameters.
        accuracy: accuracy on the evaluation data after the last epoch.
        train_seconds: training time, evaluation excluded.
        history: the run's history.
        model: the trained network.
    """

    name: str
    parameters: int
    accuracy: float
    train_seconds: float
    history: History = field(repr=False)
    model: nn.Module = field(repr=False)


def train_under_budget(
    name: str,
    model_factory: Callable[[], nn.Module],
    train_data,
    eval_data,
    budget: Budget,
    *,
    device=None,
    progress: bool = True,
) -> Result:
    """Build a run with :func:`build_run`, train it, and measure it (chapter 7).

    Args:
        name: the result's label.
        model_factory: a class or function that builds the model.
        train_data: the training data (see :func:`make_loader`).
        eval_data: evaluated after every epoch (the validation split for choices).
        budget: the recipe.
        device: where the model goes; default :func:`~mnist_course.device.pick_device`.
        progress: progress bars.

    Returns:
        Result: accuracy, parameters, training time, history and the model.
    """
    run = build_run(model_factory, train_data, budget, device=device)
    history = run.fit(eval_data, progress=progress)
    return Result(
        name=name,
        parameters=count_parameters(run.model),
        accuracy=history.last.eval_accuracy,
        train_seconds=history.train_seconds,
        history=history,
        model=run.model,
    )


@dataclass
class SeedRuns:
    """One model trained under one budget with several seeds: the mean and the spread (chapters 7 and 8).

    One run's accuracy moves by a few tenths of a percent with the seed alone (the initial
    weights and the order of the batches), so a ranking rests on several seeds: ``a`` beats
    ``b`` only when a's worst seed is better than b's best.

    Args:
        name: the row's label.
        runs: one :class:`Result` per seed.
    """

    name: str
    runs: list[Result] = field(repr=False)

    @property
    def accuracies(self) -> list[float]:
        """The accuracy of each seed's run, in seed order."""
        return [r.accuracy for r in self.runs]

    @property
    def mean(self) -> float:
        """The mean accuracy over the seeds."""
        return sum(self.accuracies) / len(self.runs)

    @property
    def low(self) -> float:
        """The worst seed's accuracy."""
        return min(self.accuracies)

    @property
    def high(self) -> float:
        """The best seed's accuracy."""
        return max(self.accuracies)

    @property
    def mean_seconds(self) -> float:
        """The mean training time of a run."""
        return sum(r.train_seconds for r in self.runs) / len(self.runs)

    def __str__(self) -> str:
        return f"{self.mean:.2%} ({self.low:.2%} - {self.high:.2%} over {len(self.runs)} seeds)"

    def beats(self, other: SeedRuns) -> bool:
        """Whether every seed of this model is more accurate than every seed of ``other``."""
        return self.low > other.high


def train_over_seeds(
    name: str,
    model_factory: Callable[[], nn.Module],
    train_data,
    eval_data,
    budget: Budget,
    seeds=(0, 1, 2),
    *,
    device=None,
) -> SeedRuns:
    """:func:`train_under_budget` once per seed, the budget otherwise unchanged (chapter 7).

    Args:
        name: the label.
        model_factory: a class or function that builds the model.
        train_data: the training data (see :func:`make_loader`).
        eval_data: the validation split: the runs are compared on it.
        budget: the recipe; its ``seed`` is replaced by each of ``seeds``.
        seeds: at least two seeds.
        device: where the models go; default :func:`~mnist_course.device.pick_device`.

    Returns:
        SeedRuns: the runs, with their mean and spread.
    """
    if len(seeds) < 2:
        raise ValueError(f"a spread needs at least two seeds, got {list(seeds)}")
    runs = [
        train_under_budget(
            name, model_factory, train_data, eval_data, budget.with_(seed=s), device=device, progress=False
        )
        for s in seeds
    ]
    return SeedRuns(name, runs)


class Comparison(list):
    """A list of :class:`SeedRuns`, shown as a table of means and spreads and indexed by name (chapters 7 and 8)."""

    def __getitem__(self, key):
        if isinstance(key, str):
            for r in self:
                if r.name == key:
                    return r
            raise KeyError(f"no model named {key!r}; have: {', '.join(r.name for r in self)}")
        return super().__getitem__(key)

    def _cells(self):
        head = ("model", "parameters", "mean accuracy", "spread (worst-best seed)", "seeds", "mean train time")
        rows = [
            (
                r.name,
                f"{r.runs[0].parameters:,}",
                f"{r.mean:.2%}",
                f"{r.low:.2%} - {r.high:.2%}",
                str(len(r.runs)),
                f"{r.mean_seconds:.1f} s",
            )
            for r in self
        ]
        return head, rows

    def __str__(self) -> str:
        return text_table(*self._cells(), right=(1, 2, 3, 4, 5))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return html_table(*self._cells())
