"""Typed results and their JSON files: the run's environment, reading and writing results (chapter 12).

Results are dataclasses in Python; JSON exists only at the file boundary: :func:`write_json`
writes one, :func:`from_dict` rebuilds the dataclass from what ``json.load`` returned.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import types
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path

import torch

from mnist_course.device import describe_device
from mnist_course.download import write_atomic


@dataclass
class Environment:
    """Hardware, versions and command of a measurement (chapter 12).

    Args:
        date: UTC time, ISO 8601.
        command: the command line that produced the result.
        device: :func:`~mnist_course.device.describe_device`'s line.
        platform: the operating system.
        python: Python's version.
        torch: torch's version.
        threads: torch's CPU threads.
        cpu_count: the machine's cores.
        cuda: the GPU's name, or None.
    """

    date: str
    command: str
    device: str
    platform: str
    python: str
    torch: str
    threads: int
    cpu_count: int | None
    cuda: str | None


def environment(device) -> Environment:
    """The :class:`Environment` of this process on ``device`` (chapter 12).

    Args:
        device: the device the measurement ran on.

    Returns:
        Environment: now (UTC), the command line, the device, versions, threads and the GPU.
    """
    main = sys.argv[0].endswith("__main__.py")
    return Environment(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        command=" ".join(["python -m mnist_course", *sys.argv[1:]]) if main else " ".join(sys.argv),
        device=describe_device(device),
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )


def _convert(kind, value):
    if value is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        return [_convert(args[0], v) for v in value]
    if origin is dict:
        return {k: _convert(args[1], v) for k, v in value.items()}
    return from_dict(kind, value) if is_dataclass(kind) else value


def from_dict(cls, data: dict):
    """Rebuild dataclass ``cls`` (and the dataclasses inside it) from plain JSON data (chapter 12).

    Args:
        cls: a dataclass type whose fields are plain values, dataclasses, ``list[...]``,
            ``dict[str, ...]`` or ``... | None``.
        data: what ``json.load`` returned for it.

    Returns:
        An instance of ``cls``.
    """
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _convert(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data})


def write_json(result, path: str | os.PathLike) -> Path:
    """Write a result dataclass as indented JSON, atomically (chapter 12).

    Args:
        result: a dataclass instance (or plain JSON data).
        path: the file.

    Returns:
        Path: ``path``.
    """
    data = asdict(result) if is_dataclass(result) else result
    path = Path(path)
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def read_reference(name: str) -> dict:
    """A committed result shipped with the package, as JSON data (chapter 12).

    Args:
        name: ``"bench-cpu"`` or ``"record"``: a file ``mnist_course/reference/NAME.json``.

    Returns:
        dict: the parsed JSON; an unknown name raises ``FileNotFoundError`` listing the available ones.
    """
    from importlib.resources import files

    folder = files("mnist_course") / "reference"
    resource = folder / f"{name}.json"
    if not resource.is_file():
        available = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))
        raise FileNotFoundError(f"no reference result {name!r}; available: {', '.join(available) or 'none'}")
    return json.loads(resource.read_text())
