"""The environments are what their files say: complete lock files, true claims about Python."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from test_notebooks import ROOT, colab_kernel_python, pins


def normalise(pinned: dict[str, str]) -> dict[str, str]:
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pinned.items()}


def installed(python: Path | str) -> dict[str, str]:
    """What a Python environment holds, as ``pip freeze`` reports it (pip itself and editables aside)."""
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all", "--exclude-editable", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(line.split("==") for line in out.splitlines() if "==" in line)
    return {name: version for name, version in normalise(found).items() if name != "pip"}


@pytest.mark.parametrize(
    "lock, python",
    [("requirements.txt", lambda: sys.executable), ("requirements-colab.txt", colab_kernel_python)],
    ids=["book", "colab"],
)
def test_the_lock_file_is_the_whole_environment(lock, python):
    """`pip install -r <lock>` into an empty venv installed exactly the lock: nothing more, nothing less."""
    locked, have = normalise(pins(lock)), installed(python())
    assert have == locked, {
        "installed but not locked": sorted(set(have) - set(locked)),
        "locked but not installed": sorted(set(locked) - set(have)),
        "other versions": sorted(n for n in set(have) & set(locked) if have[n] != locked[n]),
    }


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-colab.txt"])
def test_each_lock_pins_what_its_input_asks_for(lock):
    wanted, locked = normalise(pins(lock.replace(".txt", ".in"))), normalise(pins(lock))
    assert {n: locked.get(n) for n in wanted} == wanted, f"run `make lock` after editing {lock.replace('.txt', '.in')}"


def test_python_requirement_is_stated_the_same_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    classifiers = [
        c.rsplit(" ", 1)[-1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert min(classifiers, key=lambda v: tuple(map(int, v.split(".")))) == "3.11"
    for doc in ("README.md", "book/how-to-use.md", "book/environment.md"):
        text = (ROOT / doc).read_text()
        assert not re.search(r"Python 3\.(?:[0-9]|10)\b", text), f"{doc} names a Python the pins do not install on"
    assert sys.version_info >= (3, 11)


def repository_conftest(monkeypatch):
    """The repository's conftest.py as a module of its own (tests/conftest.py has the same name).

    Loading it runs its thread choice again: a set OMP_NUM_THREADS makes that a no-op here, and
    monkeypatch restores the variable after the test.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    spec = importlib.util.spec_from_file_location("repository_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_idle_cores_are_measured_between_none_and_all(monkeypatch):
    idle = repository_conftest(monkeypatch)._idle_cores(0.2)
    if sys.platform.startswith("linux"):
        assert 0 <= idle <= len(os.sched_getaffinity(0))
    else:
        assert idle is None


@pytest.mark.parametrize(
    "cores, idle, threads",
    [(2, 1.97, None), (2, 1.6, None), (2, 1.5, None), (2, 1.0, 1), (2, 0.1, 1), (8, 5.2, 5), (8, None, None)],
)
def test_a_busy_machine_gets_one_torch_thread_per_idle_core(monkeypatch, cores, idle, threads):
    conftest = repository_conftest(monkeypatch)
    monkeypatch.setattr(conftest, "_cores", lambda: list(range(cores)))
    monkeypatch.setattr(conftest, "_idle_cores", lambda seconds=0.5: idle)
    assert conftest.torch_threads_for_this_machine() == threads


def test_the_thread_choice_is_set_for_child_processes_unless_the_user_chose(monkeypatch):
    conftest = repository_conftest(monkeypatch)
    monkeypatch.setattr(conftest, "torch_threads_for_this_machine", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert conftest._choose_torch_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert conftest._choose_torch_threads() is None and os.environ["OMP_NUM_THREADS"] == "3"


def test_torch_in_this_process_follows_the_thread_choice():
    """The choice is made before tests/conftest.py imports torch, whose OpenMP library reads it once."""
    if "OMP_NUM_THREADS" not in os.environ:
        pytest.skip("no thread choice in this run: the machine was idle when pytest started")
    import torch

    assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"])
