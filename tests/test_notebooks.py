"""Every chapter: its structure (outline, Colab cell, parameters, toc) and a papermill run.

`pytest --nbval` separately re-runs each notebook with its defaults and compares the outputs;
here papermill runs each with small parameters into a temporary folder, so every assert cell
must hold on small data too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mnist_course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OUTLINE = ["Overview", "Prerequisites", "Summary", "Exercises", "What's next"]

#: Small parameters for the papermill run of each chapter.
SMALL = {
    "01_mnist_dataset": {"export_limit": 300},
    "02_seeing_the_data": {"focus_digit": 3, "browser_index": 5},
    "03_tensors_and_autograd": {"steps": 10, "n_images": 200},
    "04_first_classifier": {"epochs": 1, "train_limit": 3000, "overfit_epochs": 3, "seeds": [0, 1]},
    "05_conv_shapes": {"check_size": 8},
    "06_training_a_cnn": {"epochs": 1, "train_limit": 3000, "compare_limit": 1000, "seeds": [0, 1]},
    "07_lenet_family": {"epochs": 1, "train_limit": 3000, "compare_epochs": 1, "compare_limit": 2000, "seeds": [0, 1]},
    "08_comparing_models": {"epochs": 1, "train_limit": 1000, "seeds": [0, 1]},
    "09_checkpoints": {"train_limit": 2000},
    "10_your_handwriting": {"epochs": 1, "per_digit": 2},
    "11_pitfalls": {"small_train": 500, "train_limit": 3000},
    "12_making_it_fast": {"subset": 4000, "steps": 10},
    "13_many_processes": {"train_limit": 2560},
    "14_inside_the_network": {"epochs": 1, "bins": 5},
    "15_shipping_the_model": {"epochs": 1, "per_digit": 1, "timed_images": 20},
}


#: The tag of this version of the book: every chapter's Colab cell installs mnist_course from it.
TAG = f"v{mnist_course.__version__}"


def pins(name: str) -> dict[str, str]:
    """Package -> version of the ``name==version`` lines of a requirements file."""
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split()[0].split("==") for line in lines if "==" in line and not line.startswith("#"))


#: The book environment's exact versions (the lock file).
LOCKED = pins("requirements.txt")
#: Colab's versions of the packages the chapters use (the short input of its lock file).
COLAB_PINS = pins("requirements-colab.in")
#: The Jupyter kernel that runs Colab's package set (`make colab-env` registers it).
COLAB_KERNEL = "colab"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def book_tools():
    """``book/tools.py`` (the authors' tooling, not part of the package) as a module."""
    sys.path.insert(0, str(ROOT / "book"))
    try:
        import tools
    finally:
        sys.path.pop(0)
    return tools


def toc_chapters() -> list[Path]:
    return book_tools().chapters()


def source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_toc_notebook_exists_and_every_notebook_is_listed():
    listed = toc_chapters()
    assert set(listed) == set(NOTEBOOKS) and all(p.exists() for p in listed)
    assert listed == sorted(listed), "_toc.yml lists the chapters in their numbered order"
    for p in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+", p.stem), f"{p.name}: chapters are named NN_name.ipynb"
    assert set(SMALL) == {p.stem for p in NOTEBOOKS}, "every chapter needs small papermill parameters"


def test_repository_url_is_configured_once_and_used_everywhere():
    url = repository_url()
    assert url.startswith("https://github.com/")
    tools = book_tools()
    pinned_requirement = tools.pinned_requirement
    assert pinned_requirement() == f"mnist_course @ git+{url}@{TAG}"
    for doc in tools.PIP_DOCS:
        text = (ROOT / doc).read_text()
        assert url in text and f'"{pinned_requirement()}"' in text, f"{doc}: run `python book/tools.py install-cells`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_structure(path):
    nb = load(path)
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    first_code = source(code[0])
    assert '"google.colab" in sys.modules' in first_code and f'git+{repository_url()}@{TAG}"' in first_code, (
        f"the first code cell installs mnist_course from the configured repository at {TAG}, only in Colab"
    )
    assert f'"{book_tools().install_requirement(path.stem)}"' in first_code, "run `python book/tools.py install-cells`"
    shown = printed(code[0])
    assert re.fullmatch(rf"torch {LOCKED['torch']}(\+\w+)?, mnist_course {mnist_course.__version__}\n", shown), (
        "the stored outputs were made with the locked torch and this version of mnist_course: re-execute the chapter"
    )
    assert nb["metadata"].get("accelerator") == "GPU", "ask Colab for a GPU runtime"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for name in SMALL[path.stem]:
        assert re.search(rf"^{name} = ", source(params[0]), re.M), f"{name} is not a parameter"

    headings = [
        line[3:].strip()
        for c in cells
        if c["cell_type"] == "markdown"
        for line in source(c).splitlines()
        if line.startswith("## ")
    ]
    assert source(cells[0]).startswith(f"# {int(path.stem[:2])}. "), "the first cell is the chapter title"
    positions = [headings.index(h) for h in OUTLINE]
    assert positions == sorted(positions), f"outline order: {OUTLINE}"
    content = headings[headings.index("Prerequisites") + 1 : headings.index("Summary")]
    assert len(content) >= 3, "the chapter's content sections sit between Prerequisites and Summary"

    exercises_md = next(source(c) for c in cells if c["cell_type"] == "markdown" and "## Exercises" in source(c))
    n_exercises = len(re.findall(r"^\d+\. ", exercises_md, re.M))
    assert 3 <= n_exercises <= 5
    start = cells.index(next(c for c in cells if c["cell_type"] == "markdown" and "## Exercises" in source(c)))
    solutions = [c for c in cells[start:] if c["cell_type"] == "code" and "hide-input" in c["metadata"].get("tags", [])]
    assert len(solutions) >= n_exercises, "each exercise has an executed, hidden solution cell"
    for cell in solutions:  # collapsed in Colab too: a form cell shows its title, not its code
        assert re.match(r"# @title Solution to exercise \d\n# Exercise \d", source(cell)), source(cell)[:80]
        assert cell["metadata"].get("cellView") == "form", source(cell)[:80]
    hidden = [c for c in cells if c.get("metadata", {}).get("cellView") == "form"]
    assert hidden == solutions, "only solution cells are form cells"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_complete_and_clean(path):
    for cell in load(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        assert cell["execution_count"] is not None, f"unexecuted cell: {source(cell)[:60]!r}"
        ignored = "nbval-ignore-output" in cell["metadata"].get("tags", [])
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"stored error in {source(cell)[:60]!r}"
            if not ignored:
                assert not (out["output_type"] == "stream" and out["name"] == "stderr"), (
                    f"stderr output would make nbval flaky: {''.join(out['text'])[:200]}"
                )
                text = json.dumps(out.get("text", "")) + json.dumps(out.get("data", {}).get("text/plain", ""))
                assert not re.search(r"at 0x[0-9a-f]{6,}", text), "a memory address is printed"


def printed(cell: dict) -> str:
    """What a code cell printed to standard output (a kernel's own warnings on stderr aside)."""
    return "".join("".join(o["text"]) for o in cell["outputs"] if o.get("name") == "stdout")


def widget_views_and_state(nb: dict) -> tuple[list[str], dict]:
    """The widget models a notebook's outputs show, and the widget state stored with it."""
    views = [
        out["data"][WIDGET_VIEW]["model_id"]
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if WIDGET_VIEW in out.get("data", {})
    ]
    return views, nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def interactive_widgets(nb: dict) -> list[str]:
    """The model names of the widgets a notebook shows, tqdm's progress bars left out."""
    views, state = widget_views_and_state(nb)

    def is_progress_bar(model: dict) -> bool:
        children = [c.removeprefix("IPY_MODEL_") for c in model["state"].get("children", [])]
        return any(state.get(c, {}).get("model_name") == "FloatProgressModel" for c in children)

    return [state[v]["model_name"] for v in views if v in state and not is_progress_bar(state[v])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_widgets_have_their_state_embedded(path):
    """The book renders widgets from the state stored with the notebook (made with ipywidgets 8)."""
    views, state = widget_views_and_state(load(path))
    assert all(v in state for v in views), "a widget output without stored state renders as nothing"
    assert views or not state, "widget state stored but no widget shown: stale state from an earlier run"


def colab_kernel_python() -> Path:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return Path(KernelSpecManager().get_kernel_spec(COLAB_KERNEL).argv[0])
    except NoSuchKernel:
        pytest.fail(f"no Jupyter kernel named {COLAB_KERNEL!r}: run `make colab-env` (make test does) to create it")


def test_colab_kernel_runs_colabs_package_set():
    python = colab_kernel_python()
    code = "import torch, torchvision, numpy, matplotlib, PIL, ipykernel, ipywidgets, IPython, mnist_course; " + (
        "print(torch.__version__, torchvision.__version__, numpy.__version__, matplotlib.__version__, "
        "PIL.__version__, ipykernel.__version__, ipywidgets.__version__, IPython.__version__, mnist_course.__version__)"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    got = [version.split("+")[0] for version in out.split()]  # e.g. 2.11.0+cu130: the build aside
    pins = COLAB_PINS
    wanted = [pins[n] for n in ("torch", "torchvision", "numpy", "matplotlib", "pillow", "ipykernel", "ipywidgets")]
    assert got[:7] == wanted and got[7] == pins["ipython"] and got[8] == mnist_course.__version__


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_runs_with_small_parameters_in_colabs_packages(path, tmp_path, mnist_root):
    """Every chapter, with its small parameters, in Colab's package set (ipywidgets 7, torch 2.11)."""
    import papermill

    colab_kernel_python()
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=SMALL[path.stem],
        kernel_name=COLAB_KERNEL,
        cwd=str(path.parent),
        progress_bar=False,
        log_output=False,
    )
    executed = load(out)
    assert not executed["metadata"]["papermill"].get("exception")  # papermill also raises on a failed cell
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    assert all(c["execution_count"] is not None for c in executed["cells"] if c["cell_type"] == "code")
    shown = printed(next(c for c in executed["cells"] if c["cell_type"] == "code"))
    assert re.fullmatch(rf"torch {COLAB_PINS['torch']}(\+\w+)?, mnist_course {mnist_course.__version__}\n", shown)
    views, state = widget_views_and_state(executed)
    assert all(v in state for v in views), "widget state embedded under ipywidgets 7 too"
    stored = load(path)
    assert interactive_widgets(executed) == interactive_widgets(stored), (
        "the chapter shows the same widgets under ipywidgets 7 as under 8 (progress bars aside: one per epoch)"
    )


def chapter_names() -> dict[str, set[str]]:
    """The ``mnist_course`` names each chapter imports (in code cells or scripts it writes) or reads as ``models.X``."""
    import ast

    used: dict[str, set[str]] = {}
    for path in NOTEBOOKS:
        for cell in load(path)["cells"]:
            if cell["cell_type"] != "code":
                continue
            lines = [re.sub(r"^(\s*)[%!].*", r"\1pass", line) for line in source(cell).splitlines()]  # magics
            for node in ast.walk(ast.parse("\n".join(lines))):
                found = []
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnist_course."):
                    found = [a.name for a in node.names]
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "models":
                    found = [node.attr]
                for name in found:
                    used.setdefault(name, set()).add(path.stem[:2])
            for names in re.findall(r"from mnist_course\.\w+ import ([\w, ]+)", source(cell)):  # also in scripts
                for name in names.replace(" ", "").split(","):
                    used.setdefault(name, set()).add(path.stem[:2])
    return used


def test_api_page_lists_every_name_the_chapters_import():
    """A reader meets few names: the API page lists each one the chapters import, helpers and networks apart."""
    from mnist_course import models

    used = set(chapter_names())
    text = (ROOT / "book" / "api.md").read_text()
    paragraph = text[text.index("**Every name the chapters import**") :].split("\n\n")[0]
    helpers_text, networks_text = paragraph.split("And the book's networks")
    helpers, networks = set(re.findall(r"`(\w+)`", helpers_text)), set(re.findall(r"`(\w+)`", networks_text))
    assert helpers | networks == used, "update the lists on book/api.md"
    assert all(isinstance(getattr(models, n, None), type) for n in networks) and not helpers & networks
    assert f"({len(used)})" in paragraph and f"({len(helpers)})" in paragraph and f"({len(networks)})" in paragraph
    assert len(helpers) <= 36, "more helpers than a reader should meet: write the new one in its chapter"


def test_every_package_model_is_written_in_a_chapter_and_checked_against_it():
    """Plain PyTorch first: each class of mnist_course.models appears in a chapter cell that writes a model
    as ``class ...(nn.Module)`` or uses one, and compares it with the package's by ``same_network``."""
    import inspect

    from torch import nn

    from mnist_course import models

    classes = {n for n, c in vars(models).items() if inspect.isclass(c) and issubclass(c, nn.Module)}
    checked = set()
    written = 0
    for path in NOTEBOOKS:
        code = [source(c) for c in load(path)["cells"] if c["cell_type"] == "code"]
        written += sum(len(re.findall(r"^class \w+\((nn\.Module|[A-Z]\w+)\):", c, re.M)) for c in code)
        for cell in (c for c in code if "same_network(" in c):
            checked |= {n for n in classes if re.search(rf"\b(models\.)?{n}\(|models\.{n}\b", cell)}
    assert checked == classes, f"not checked against a chapter's class: {sorted(classes - checked)}"
    assert written >= len(classes)


def stored_seconds(nb: dict) -> float:
    """How long the stored outputs took to make: the sum of the code cells' execution times."""
    from datetime import datetime

    total = 0.0
    for cell in nb["cells"]:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.fromisoformat(timing[k]) for k in ("iopub.execute_input", "shell.execute_reply"))
            total += (end - start).total_seconds()
    return total


NUMBER_WORDS = {"half a": 0.5, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_prerequisites_state_the_stored_run_time(path):
    """The run time a chapter promises is the one its stored outputs took (within a factor of two)."""
    nb = load(path)
    text = source(nb["cells"][0])
    prerequisites = " ".join(text[text.index("## Prerequisites") :].split())
    words = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
    m = re.search(rf"\b(about|under) ({words}|\d+)( and a half)? (second|minute)s?\b", prerequisites, re.I)
    assert m, "say how long the chapter takes on a 2-core CPU"
    n = NUMBER_WORDS.get(m[2].lower()) or float(m[2])
    claim = (n + (0.5 if m[3] else 0)) * (60 if m[4].lower() == "minute" else 1)
    took = stored_seconds(nb)
    if m[1].lower() == "under":
        assert took <= claim * 1.25, f"the stored run took {took:.0f} s, not under {claim:.0f} s"
    else:
        assert claim / 2 <= took <= claim * 2, f"the stored run took {took:.0f} s, not about {claim:.0f} s"


def test_every_api_section_a_chapter_points_to_exists():
    headings = set(re.findall(r"^## (.+)$", (ROOT / "book" / "api.md").read_text(), re.M))
    for path in NOTEBOOKS:
        intro = " ".join(source(load(path)["cells"][0]).split())
        for section in re.findall(r"section \*([^*]+)\*", intro):
            assert section in headings, f"{path.stem} points to a section the API page does not have: {section}"


def test_the_book_serves_the_model_chapter_15_exported():
    """The digit pad's model is the file whose SHA-256 chapter 15's stored run printed."""
    import hashlib

    text = "".join(
        printed(c)
        for c in load(ROOT / "notebooks" / "15_shipping_the_model.ipynb")["cells"]
        if c["cell_type"] == "code"
    )
    digest = re.search(r"lenet5\.onnx: [\d,]+ bytes, SHA-256 ([0-9a-f]{64})", text)[1]
    served = ROOT / "book" / "static" / "lenet5.onnx"
    assert hashlib.sha256(served.read_bytes()).hexdigest() == digest, (
        "book/static/lenet5.onnx is not the model chapter 15 exported: run "
        "`python book/tools.py execute 15_shipping_the_model`"
    )
