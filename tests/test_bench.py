"""mnist_course.bench: the race, speed levers, profile and typed results (the shape of --quick's, not its numbers)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from mnist_course import bench, recipe
from mnist_course.bench import (
    FAST_BUDGET,
    LEVER_STEPS,
    RECIPES,
    BenchResult,
    DataPath,
    LeverRow,
    OpShare,
    Race,
    RaceRun,
    RaceSettings,
    Recipe,
    epoch_seconds,
    profile_steps,
    reference,
    speed_levers,
    step_profile,
    summary,
    time_to_accuracy,
)
from mnist_course.cli import main
from mnist_course.data import TensorLoader
from mnist_course.models import LeNet, LeNet5
from mnist_course.recipe import Budget
from mnist_course.record import RecordResult
from mnist_course.results import Environment, from_dict, read_reference


def test_the_race_recipes_and_the_fast_budget():
    names = list(RECIPES)
    assert names[:2] == ["seed 002 recipe (LeNet-5)", "book's fast recipe (LeNet-5)"] and len(names) == 4
    baseline = RECIPES[names[0]]
    assert baseline.model is LeNet5 and baseline.data == "dataloader" and baseline.normalize is False
    assert baseline.budget.schedule == "constant" and baseline.budget.batch_size == 100
    assert all(r.budget == FAST_BUDGET and r.data == "tensors" for r in list(RECIPES.values())[1:])
    f = FAST_BUDGET
    assert (f.epochs, f.batch_size, f.label_smoothing, f.warmup, f.anneal, f.beta2) == (1, 64, 0.1, 0.2, "linear", 0.99)
    assert f.channels_last and f.bf16 and f.fused and not f.augment


def test_race_takes_the_median_over_seeds_counting_misses_as_infinite(monkeypatch):
    outcomes, loads, given = {}, [], []
    monkeypatch.setattr(bench, "recipe_data", lambda *args, **kwargs: loads.append(1) or "train")
    monkeypatch.setattr(bench, "load_tensors", lambda *args, **kwargs: loads.append(2) or "test")
    settings = RaceSettings(
        "LeNet5", "tensors", True, 1, 64, 5e-3, "adam", "onecycle", 0.2, "linear", 0.99, 0.1, True, "float32", False
    )

    def fake(recipe, train, test, device, *, seed, target):
        given.append((train, test))
        reached, seconds = outcomes[seed]
        return RaceRun(seed=seed, reached=reached, seconds=seconds, epochs=1, accuracy_per_epoch=[0.99]), settings

    monkeypatch.setattr(bench, "time_to_accuracy", fake)
    outcomes.update({0: (True, 3.0), 1: (True, 5.0), 2: (False, 4.0)})
    result = bench.race(Recipe(LeNet5, Budget()), "cpu", (0, 1, 2))
    assert isinstance(result, Race)
    assert result.median_seconds == 5.0 and result.reached == 2 and result.seeds == [0, 1, 2]
    assert result.settings is settings and all(isinstance(run, RaceRun) for run in result.runs)
    assert all(not hasattr(run, "settings") for run in result.runs)
    assert [r.seed for r in result.runs] == [0, 1, 2]
    assert loads == [1, 2] and given == [("train", "test")] * 3, "the data is loaded once for all seeds"
    outcomes.update({1: (False, 5.0)})
    assert bench.race(Recipe(LeNet5, Budget()), "cpu", (0, 1, 2)).median_seconds is None


def test_time_to_accuracy_stops_at_the_target_and_states_its_settings(tiny_data, monkeypatch):
    train, test = tiny_data
    monkeypatch.setattr(recipe, "native_bf16", lambda device: False)
    fast = Recipe(LeNet, FAST_BUDGET.with_(epochs=3))
    run, settings = time_to_accuracy(fast, train, test, torch.device("cpu"), seed=2, target=0.0)
    assert isinstance(run, RaceRun) and run.seed == 2 and run.reached and run.epochs == 1
    assert len(run.accuracy_per_epoch) == 1 and run.seconds > 0
    assert isinstance(settings, RaceSettings) and settings.model == "LeNet" and settings.epochs == 3
    assert settings.batch_size == 64 and settings.label_smoothing == 0.1 and settings.channels_last is True
    assert settings.precision == "float32", "no bf16 autocast without native bf16"
    assert isinstance(settings.fused_optimizer, bool)
    missed, _ = time_to_accuracy(Recipe(LeNet, FAST_BUDGET.with_(epochs=2)), train[:160], test, "cpu", target=1.01)
    assert not missed.reached and missed.epochs == 2 and len(missed.accuracy_per_epoch) == 2


def test_epoch_seconds_times_one_epoch(tiny_data):
    train, _ = tiny_data
    assert epoch_seconds(LeNet, TensorLoader(train, 64), "cpu") > 0
    assert epoch_seconds(LeNet, train, "cpu", channels_last=True, fused=True) > 0


def test_speed_levers_skip_bf16_without_native_support(tiny_data, monkeypatch):
    train, _ = tiny_data
    monkeypatch.setattr(bench, "native_bf16", lambda device: False)
    rows = speed_levers(train[:128], "cpu", 1)
    assert [r.levers for r in rows] == [name for name, _ in LEVER_STEPS]
    assert all(isinstance(r, LeverRow) for r in rows)
    assert rows[0].levers == "float32, in-memory tensors" and rows[0].speedup == 1.0
    assert rows[1].seconds > 0 and rows[1].speedup > 0
    assert [(r.seconds, r.speedup) for r in rows[2:]] == [(None, None)] * 2
    assert all("no native bf16" in r.note for r in rows[2:])


def test_profile_steps_keeps_the_backend_quiet(capfd):
    x = torch.randn(64, 64)
    ops = profile_steps(lambda: (x @ x).relu(), "cpu", steps=3, warmup=1)
    assert any("mm" in e.key for e in ops)
    assert capfd.readouterr().err == "", "nothing reaches the process's stderr"


def test_step_profile_ranks_the_top_eight_ops(tiny_data):
    train, _ = tiny_data
    shares = step_profile(train, "cpu", batch_size=16)
    assert len(shares) == 8 and all(isinstance(s, OpShare) for s in shares)
    values = [s.self_cpu_share for s in shares]
    assert values == sorted(values, reverse=True) and 0 < sum(values) <= 1 and all(s.calls > 0 for s in shares)


def same_data(stored, typed, where="result") -> None:
    """``typed`` (a dataclass as plain data) holds every value of ``stored`` (JSON) and only None besides.

    The committed files predate some optional fields (e.g. ``LeverRow.note``), which read back as None.
    """
    if isinstance(stored, dict):
        assert isinstance(typed, dict) and set(stored) <= set(typed), where
        for key in stored:
            same_data(stored[key], typed[key], f"{where}.{key}")
        assert all(typed[key] is None for key in set(typed) - set(stored)), where
    elif isinstance(stored, list):
        assert isinstance(typed, list) and len(stored) == len(typed), where
        for i, (a, b) in enumerate(zip(stored, typed, strict=True)):
            same_data(a, b, f"{where}[{i}]")
    else:
        assert stored == typed and type(stored) is type(typed), where


@pytest.mark.parametrize("name, kind", [("bench-cpu", BenchResult), ("record", RecordResult)])
def test_committed_references_round_trip_through_from_dict(name, kind):
    data = read_reference(name)
    result = reference(name)
    assert type(result) is kind and isinstance(result.environment, Environment)
    same_data(data, asdict(result))  # every value of the JSON is read back, nothing invented
    assert from_dict(kind, json.loads(json.dumps(asdict(result)))) == result


def test_reference_bench_is_typed_all_the_way_down():
    result = reference("bench-cpu")
    assert isinstance(result.data_path, DataPath) and list(result.time_to_99) == list(RECIPES)
    race = result.time_to_99["book's fast recipe (LeNet-5)"]
    assert isinstance(race, Race) and isinstance(race.settings, RaceSettings) and isinstance(race.runs[0], RaceRun)
    assert all(isinstance(r, LeverRow) for r in result.speed_levers)
    assert all(isinstance(r, OpShare) for r in result.step_profile)
    with pytest.raises(FileNotFoundError, match="available: bench-cpu, record"):
        reference("bench-gpu")


def test_summary_reports_every_measurement():
    result = reference("bench-cpu")
    text = summary(result)
    assert text.splitlines()[0].startswith(result.environment.device)
    parts = ("data path (LeNet-5 epoch)", "fast recipe chosen on the validation split: peak lr", "time to 99%")
    for part in (*parts, "fastest to 99%", "speed levers", "batch size", "GPU:"):
        assert part in text, part
    assert "quick mode" not in text
    result.quick = True
    assert "quick mode" in summary(result)


@pytest.mark.slow
def test_bench_quick_writes_the_expected_json(mnist_root, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--root", str(mnist_root), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    env = result["environment"]
    assert {"date", "command", "device", "torch", "threads", "python", "platform"} <= set(env)
    assert result["quick"] is True
    assert set(result["data_path"]) >= {"dataloader_seconds", "tensor_seconds", "speedup", "batch_size", "images"}
    assert len(result["time_to_99"]) == 4
    for race in result["time_to_99"].values():
        assert {"settings", "seeds", "reached", "median_seconds", "runs"} <= set(race)
        assert race["seeds"] == [0] and len(race["runs"]) == 1
        for run in race["runs"]:
            assert {"seed", "reached", "seconds", "epochs", "accuracy_per_epoch"} <= set(run)
    fast = result["time_to_99"]["book's fast recipe (LeNet-5)"]["settings"]
    assert fast["batch_size"] == 64 and fast["label_smoothing"] == 0.1 and fast["channels_last"] is True
    assert fast["precision"] in ("bf16 autocast", "float32")
    assert [r["levers"] for r in result["speed_levers"]][0] == "float32, in-memory tensors"
    assert result["speed_levers"][0]["speedup"] == 1.0
    shares = [r["self_cpu_share"] for r in result["step_profile"]]
    assert len(shares) == 8 and shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1
    assert [r["batch_size"] for r in result["scaling_batch_size"]] == [32, 128, 512]
    assert all(r["seconds"] > 0 for r in result["scaling_fraction"])
    assert isinstance(result["gpu"], (str, dict))
    choice = result["fast_recipe_choice"]
    assert [(r["lr"], r["label_smoothing"]) for r in choice] == [(a, b) for a in (3e-3, 5e-3, 8e-3) for b in (0.0, 0.1)]
    assert all(len(r["accuracies"]) == 1 and 0 <= r["accuracies"][0] <= 1 for r in choice)
    assert asdict(from_dict(BenchResult, result)) == result, "the JSON is exactly a BenchResult"
    text = capsys.readouterr().out
    assert "data path (LeNet-5 epoch)" in text and "time to 99%" in text
    assert f"results: {out}" in text
