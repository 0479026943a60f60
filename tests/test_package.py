"""The package as a whole: importing any module has no side effects, and the modules import without cycles."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import mnist_course

PACKAGE = Path(mnist_course.__file__).parent
#: Every module of the package; ``__main__`` runs the CLI when imported, so it is left out.
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.name != "__main__")


def test_the_module_list_is_complete():
    on_disk = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert set(MODULES) == on_disk and len(MODULES) >= 20
    assert {"download", "data", "device", "history", "train", "recipe", "bench", "record", "results", "cli"} <= on_disk
    assert "compare" not in on_disk


def test_importing_every_module_has_no_side_effects(tmp_path):
    imports = "\n".join(f"import mnist_course.{name}" for name in MODULES)
    code = (
        "import matplotlib, torch, random, os, sys\n"
        "import numpy as np\n"
        "rc = dict(matplotlib.rcParams); state = torch.get_rng_state(); r = random.getstate()\n"
        "np_state = np.random.get_state()[1].copy(); threads = torch.get_num_threads()\n"
        "backend = matplotlib.get_backend()\n"
        "import mnist_course\n"
        f"{imports}\n"
        "assert dict(matplotlib.rcParams) == rc, 'rcParams changed'\n"
        "assert matplotlib.get_backend() == backend, 'backend changed'\n"
        "assert torch.equal(torch.get_rng_state(), state) and random.getstate() == r, 'RNG touched'\n"
        "assert (np.random.get_state()[1] == np_state).all(), 'NumPy RNG touched'\n"
        "assert torch.get_num_threads() == threads, 'thread count changed'\n"
        "assert not os.path.exists(os.environ['MNIST_COURSE_DATA']), 'data fetched at import'\n"
        f"assert len([m for m in sys.modules if m.startswith('mnist_course.')]) >= {len(MODULES)}\n"
        "print('imported', len([m for m in sys.modules if m.startswith('mnist_course.')]))\n"
    )
    env = {**os.environ, "MNIST_COURSE_DATA": str(tmp_path / "nothing"), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("imported ") and run.stderr == "", "nothing printed at import"


def imports_of(name: str) -> set[str]:
    """The mnist_course modules that module ``name`` imports, anywhere in it (function-level imports too)."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                base = node.module.split(".")[0] if node.module else None
                found |= {base} if base else {a.name for a in node.names}
            elif node.module == "mnist_course":
                found |= {a.name for a in node.names}
            elif node.module and node.module.startswith("mnist_course."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mnist_course.")}
    return (found & set(MODULES)) - {name}


def test_no_import_cycle_among_the_modules():
    graph = {name: imports_of(name) for name in MODULES}
    assert graph["train"] >= {"checkpoint", "device", "evaluate", "history"}, "the parser sees the imports"
    assert "train" not in graph["checkpoint"], "checkpoint imports history, not train"
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "visiting"
        for dep in sorted(graph[name]):
            if state.get(dep) == "visiting":
                raise AssertionError(
                    "import cycle: " + " -> ".join([*path, name, dep][path.index(dep) if dep in path else 0 :])
                )
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = "done"

    for name in MODULES:
        if name not in state:
            visit(name, [])


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    """The check above is not vacuous: a graph with a cycle fails it."""
    real = imports_of

    def with_cycle(name):
        return real(name) | ({"train"} if name == "history" else set())

    monkeypatch.setitem(globals(), "imports_of", with_cycle)
    try:
        test_no_import_cycle_among_the_modules()
    except AssertionError as exc:
        assert "import cycle" in str(exc) and "history" in str(exc) and "train" in str(exc)
    else:
        raise AssertionError("a cycle train -> history -> train was not found")


def test_no_function_is_longer_than_fifty_lines():
    """Small pieces, each one idea: a longer function is split (docstring included in the count)."""
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                long.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long
