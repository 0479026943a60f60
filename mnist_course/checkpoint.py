"""Saving and resuming training: one file, written atomically, loadable on any device (chapter 9)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_course.download import write_atomic
from mnist_course.errors import CheckpointError
from mnist_course.history import History
from mnist_course.models import model_name

#: The marker every checkpoint of this package carries.
FORMAT = "mnist_course.checkpoint/1"


def rng_state() -> dict:
    """Python's, NumPy's and torch's (CPU and CUDA) random states, in a form ``torch.load`` accepts safely (chapter 9).

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and, with CUDA, ``cuda`` states.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (chapter 9).

    Args:
        state: a :func:`rng_state` result (CUDA states only where the device count matches).
    """
    random.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    *,
    epoch: int = 0,
    history: History | None = None,
    loader=None,
    extra: dict | None = None,
) -> Path:
    """Save model, optimizer, scheduler, history, epoch and random states in one file (chapter 9).

    The file is written under a temporary name in the same folder and renamed over ``path``
    only when complete, so an interrupted save leaves the previous checkpoint intact.

    Args:
        path: where to write.
        model: its ``state_dict`` and registry name are saved.
        optimizer: its state (moments, step counts), if given.
        scheduler: its state, if given.
        epoch: epochs completed.
        history: the run's :class:`~mnist_course.history.History`.
        loader: a loader with ``state_dict`` (``TensorLoader``), so a resumed run sees the same batches.
        extra: anything else ``torch.load(weights_only=True)`` can read back.

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    state = {
        "format": FORMAT,
        "model_name": model_name(model),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "optimizer_name": type(optimizer).__name__ if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "history": history.to_dict() if history is not None else None,
        "rng": rng_state(),
        "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
        "extra": extra or {},
    }
    write_atomic(path, lambda f: torch.save(state, f))
    return path


def optimizer_owns(optimizer: torch.optim.Optimizer, model: nn.Module) -> bool:
    """Whether every tensor ``optimizer`` updates is one of ``model``'s parameters (chapter 9 writes it; chapter 11).

    An optimizer keeps the very tensors it was given. One built on another model's parameters
    (seed 001's slip when resuming) steps only that other model: ``model`` never changes and its
    gradients pile up. This returns False then.

    Args:
        optimizer: any optimizer.
        model: the model it should update.

    Returns:
        bool: True if all of the optimizer's tensors are ``model``'s parameters (by identity).
    """
    mine = {id(p) for p in model.parameters()}
    return all(id(p) in mine for group in optimizer.param_groups for p in group["params"])


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read besides the weights (chapter 9).

    Args:
        path: the file.
        model_name: the registry name of the saved model.
        epoch: epochs completed when it was saved.
        history: the run's history, if saved.
        extra: the ``extra`` dict given to :func:`save_checkpoint`.
    """

    path: Path
    model_name: str
    epoch: int
    history: History | None
    extra: dict


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The raw checkpoint dictionary, loaded with ``weights_only=True`` (chapter 9).

    Args:
        path: a file written by :func:`save_checkpoint`.
        map_location: where to put its tensors (the CPU by default).

    Returns:
        dict: ``format``, ``model_name``, ``model``, ``optimizer``, ``scheduler``, ``epoch``,
        ``history``, ``rng``, ``loader`` and ``extra``.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a checkpoint file" if path.is_dir() else "missing"
        raise CheckpointError(f"{path} is {what}; train with `--checkpoint {path}` first")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): it was never written completely; use another checkpoint")
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{path} is not a checkpoint: torch.save writes a zip archive, and this file is not one")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways; torch's advice would be unsafe
        reason = type(exc).__name__
        raise CheckpointError(
            f"{path} is damaged and cannot be loaded safely ({reason}); use another checkpoint"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a mnist_course checkpoint (no '{FORMAT}' marker)")
    return state


def check_schedule(path, saved: dict | None, scheduler, loader=None) -> None:
    """Refuse to resume a schedule planned for another number of steps (chapter 9).

    A one-cycle schedule's shape depends on its total steps; continuing it with another
    length would train at the wrong learning rates.

    Args:
        path: the checkpoint, for the message.
        saved: the scheduler state stored in it.
        scheduler: the scheduler about to be resumed.
        loader: the training loader, to state the plan in epochs.
    """
    planned, now = (saved or {}).get("total_steps"), getattr(scheduler, "total_steps", None)
    if planned is None or now is None or planned == now:
        return
    steps = len(loader) if loader is not None and hasattr(loader, "__len__") else None
    epochs = f" ({planned // steps} epoch{'s' if planned // steps != 1 else ''} of this data)" if steps else ""
    raise CheckpointError(
        f"{path} follows a learning-rate schedule planned for {planned} steps{epochs}, but this one plans {now}: "
        "resume with the same epochs and batch size, or start a new run"
    )


def _refuse_mismatches(path, state: dict, model, optimizer, scheduler, loader) -> None:
    """Everything that can be checked before loading, so a refused load changes nothing."""
    saved, target = state["model_name"], model_name(model)
    if saved != target:
        raise CheckpointError(f"{path} holds a '{saved}' model; it cannot be loaded into a '{target}' model")
    if optimizer is not None:
        kind = state.get("optimizer_name") or _optimizer_kind(state["optimizer"])
        if state["optimizer"] is None:
            raise CheckpointError(f"{path} was saved without an optimizer state")
        if kind is not None and kind not in type(optimizer).__name__:  # Adam state fits AdamW too
            raise CheckpointError(
                f"{path} holds the state of a {kind} optimizer, which does not fit this {type(optimizer).__name__}: "
                f"resume with {kind} (e.g. --optimizer {kind.lower()})"
            )
    if scheduler is not None and state["scheduler"] is not None:
        check_schedule(path, state["scheduler"], scheduler, loader)
    if scheduler is None and optimizer is not None and state["scheduler"] is not None:
        raise CheckpointError(
            f"{path} was saved with a learning-rate scheduler: pass one of the same kind to resume it "
            "(without it, training would go on at the last learning rate of the schedule)"
        )


def _optimizer_kind(saved: dict | None) -> str | None:
    """Adam or SGD, from the per-parameter state a checkpoint of mnist_course 0.1 saved (no name then)."""
    keys = {k for per_param in (saved or {}).get("state", {}).values() for k in per_param}
    return "Adam" if "exp_avg" in keys else "SGD" if "momentum_buffer" in keys else None


def _load_states(path, state: dict, optimizer, scheduler, loader) -> None:
    if optimizer is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path} holds an optimizer state that does not fit this optimizer: {exc}") from None
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if loader is not None and state["loader"] is not None and hasattr(loader, "load_state_dict"):
        loader.load_state_dict(state["loader"])


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    *,
    loader=None,
    map_location="cpu",
    restore_rng: bool = True,
) -> Checkpoint:
    """Load a :func:`save_checkpoint` file into ``model`` (and optimizer, scheduler, loader) (chapter 9).

    Tensors are mapped to ``map_location`` first, so a checkpoint saved on a GPU loads on a
    CPU-only machine; ``load_state_dict`` then copies them onto the model's device.

    Args:
        path: a file written by :func:`save_checkpoint`.
        model: receives the weights; must be the same architecture (else ``ValueError`` naming both).
        optimizer: receives the optimizer state, if given.
        scheduler: receives the scheduler state, if given (checked by :func:`check_schedule`).
        loader: receives the loader's shuffling state, if given.
        map_location: where tensors are loaded first.
        restore_rng: restore the random states, so training continues exactly as it would have.

    Returns:
        Checkpoint: the model name, epoch, history and extra data.
    """
    state = read_checkpoint(path, map_location)
    _refuse_mismatches(path, state, model, optimizer, scheduler, loader)
    saved, target = state["model_name"], model_name(model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} holds weights of a different '{saved}' architecture than this '{target}': {exc}"
        ) from exc
    _load_states(path, state, optimizer, scheduler, loader)
    if restore_rng:
        set_rng_state(state["rng"])
    history = History.from_dict(state["history"]) if state["history"] is not None else None
    return Checkpoint(Path(path), saved, state["epoch"], history, state["extra"])
