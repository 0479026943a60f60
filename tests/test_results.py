"""mnist_course.results: the environment record, write_json, from_dict and the committed references."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pytest
import torch

from mnist_course.bench import BenchResult, reference
from mnist_course.device import describe_device
from mnist_course.record import RecordResult
from mnist_course.results import Environment, environment, from_dict, read_reference, write_json


@dataclass
class Leaf:
    name: str
    value: float


@dataclass
class Tree:
    leaves: list[Leaf]
    by_name: dict[str, Leaf]
    best: Leaf | None
    sizes: list[int]
    note: str | None = None
    extra: list[Leaf] = field(default_factory=list)


def test_environment_describes_this_process():
    env = environment("cpu")
    assert isinstance(env, Environment) and env.device == describe_device("cpu")
    assert env.torch == torch.__version__ and env.threads == torch.get_num_threads()
    assert env.date.endswith("+00:00") and env.command and env.python.count(".") == 2
    assert env.cuda == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def test_from_dict_rebuilds_nested_dataclasses():
    data = {
        "leaves": [{"name": "a", "value": 1.0}, {"name": "b", "value": 2.5}],
        "by_name": {"a": {"name": "a", "value": 1.0}},
        "best": None,
        "sizes": [1, 2],
        "ignored": "a key the dataclass does not have",
    }
    tree = from_dict(Tree, data)
    assert tree == Tree([Leaf("a", 1.0), Leaf("b", 2.5)], {"a": Leaf("a", 1.0)}, None, [1, 2])
    assert from_dict(Tree, {**data, "best": {"name": "b", "value": 2.5}}).best == Leaf("b", 2.5)
    with pytest.raises(TypeError):
        from_dict(Tree, {"leaves": []})  # required fields missing


def test_write_json_then_from_dict_gives_an_equal_object(tmp_path):
    tree = Tree([Leaf("a", 1.0)], {"a": Leaf("a", 1.0)}, Leaf("a", 1.0), [3], note="n", extra=[Leaf("x", 0.5)])
    path = write_json(tree, tmp_path / "sub" / "tree.json")
    assert path == tmp_path / "sub" / "tree.json" and path.read_text().endswith("}\n")
    assert from_dict(Tree, json.loads(path.read_text())) == tree
    assert [p.name for p in path.parent.iterdir()] == ["tree.json"], "written atomically, no leftovers"
    write_json({"plain": [1, 2]}, tmp_path / "plain.json")
    assert json.loads((tmp_path / "plain.json").read_text()) == {"plain": [1, 2]}


@pytest.mark.parametrize("name, kind", [("bench-cpu", BenchResult), ("record", RecordResult)])
def test_write_json_then_from_dict_of_the_committed_results(tmp_path, name, kind):
    result = reference(name)
    path = write_json(result, tmp_path / f"{name}.json")
    back = from_dict(kind, json.loads(path.read_text()))
    assert back == result and asdict(back) == asdict(result)


def test_read_reference_gives_json_data_and_names_the_choices():
    data = read_reference("record")
    assert isinstance(data, dict) and {"environment", "recipe", "test_accuracy"} <= set(data)
    with pytest.raises(FileNotFoundError, match="no reference result 'nope'; available: bench-cpu, record"):
        read_reference("nope")
