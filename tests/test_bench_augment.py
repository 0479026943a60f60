"""mnist_course.bench (the shape of --quick's JSON, not its numbers) and mnist_course.augment."""

from __future__ import annotations

import json

import torch

from mnist_course.__main__ import main
from mnist_course.augment import AugmentedLoader, random_affine
from mnist_course.data import TensorLoader


def test_random_affine_keeps_shape_and_background():
    images = torch.full((8, 1, 28, 28), -0.4242)
    images[:, :, 10:18, 12:16] = 2.8
    out = random_affine(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and not torch.allclose(out, images)
    assert torch.allclose(out[:, :, 0, 0], torch.full((8, 1), -0.4242)), "the border stays background"
    same = random_affine(images, degrees=0, translate=0, scale=(1.0, 1.0))
    assert torch.allclose(same, images, atol=1e-5)


def test_augmented_loader_is_reproducible_and_resumable(tiny_data):
    train, _ = tiny_data
    a = AugmentedLoader(TensorLoader(train, 64, shuffle=True, seed=1), seed=2)
    b = AugmentedLoader(TensorLoader(train, 64, shuffle=True, seed=1), seed=2)
    assert len(a) == 5
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b, strict=True))
    state = a.state_dict()
    first = [x for x, _ in a]
    a.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(first, (x for x, _ in a), strict=True))


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
    text = capsys.readouterr().out
    assert "data path (LeNet-5 epoch)" in text and "time to 99%" in text


def test_record_recipe_runs_and_reports(mnist_root, tmp_path):
    from mnist_course.bench import record
    from mnist_course.data import sha256_of

    ck = tmp_path / "record.ckpt"
    result = record(1, root=mnist_root, checkpoint=ck, limit=256, log=lambda m: None)
    assert result["training_images"] == 256 and result["recipe"]["model"] == "ModernCNN"
    assert len(result["accuracy_per_epoch"]) == 1 and result["reached_target"] is False
    assert result["checkpoint"]["sha256"] == sha256_of(ck)
    json.dumps(result)


def test_race_takes_the_median_over_seeds_counting_misses_as_infinite(monkeypatch):
    from mnist_course import bench

    outcomes, loads, given = {}, [], []
    monkeypatch.setattr(bench, "recipe_data", lambda *args, **kwargs: loads.append(1) or ("train", "test"))

    def fake(recipe, test, device, *, seed, data, **kwargs):
        given.append(data)
        reached, seconds = outcomes[seed]
        return {
            "seed": seed,
            "reached": reached,
            "seconds": seconds,
            "epochs": 1,
            "accuracy_per_epoch": [0.99],
            "settings": {"model": "LeNet5"},
        }

    monkeypatch.setattr(bench, "time_to_accuracy", fake)
    outcomes.update({0: (True, 3.0), 1: (True, 5.0), 2: (False, 4.0)})
    result = bench.race({}, None, "cpu", (0, 1, 2))
    assert result["median_seconds"] == 5.0 and result["reached"] == 2 and result["seeds"] == [0, 1, 2]
    assert "settings" in result and all("settings" not in run for run in result["runs"])
    assert len(loads) == 1 and given == [("train", "test")] * 3, "the data is loaded once for all seeds"
    outcomes.update({1: (False, 5.0)})
    assert bench.race({}, None, "cpu", (0, 1, 2))["median_seconds"] is None


def test_apply_speed_uses_bf16_only_where_native(monkeypatch):
    from mnist_course import bench
    from mnist_course.models import LeNet5

    model, autocast = bench.apply_speed(LeNet5(), "cpu", channels_last=True, bf16=True)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(bench, "native_bf16", lambda device: False)
    assert bench.apply_speed(LeNet5(), "cpu", bf16=True)[1] is None
    monkeypatch.setattr(bench, "native_bf16", lambda device: True)
    assert bench.apply_speed(LeNet5(), "cpu", bf16=True)[1] is torch.bfloat16
    assert bench.apply_speed(LeNet5(), "cpu")[1] is None


def test_profile_steps_keeps_the_backend_quiet(capfd):
    from mnist_course.bench import profile_steps

    x = torch.randn(64, 64)
    ops = profile_steps(lambda: (x @ x).relu(), "cpu", steps=3, warmup=1)
    assert any("mm" in e.key for e in ops)
    assert capfd.readouterr().err == "", "nothing reaches the process's stderr"
