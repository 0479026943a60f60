"""mnist_course.record: the best-accuracy recipe and its typed result."""

from __future__ import annotations

import json

import pytest

from mnist_course import record as record_module
from mnist_course.download import sha256_of
from mnist_course.record import RECORD_BUDGET, TARGET, RecordRecipe, RecordResult, SavedCheckpoint, record
from mnist_course.results import Environment, from_dict, write_json


def test_record_budget_is_the_books_recipe():
    b = RECORD_BUDGET
    assert (b.epochs, b.batch_size, b.lr, b.label_smoothing, b.augment) == (15, 128, 3e-3, 0.1, True)
    assert (b.optimizer, b.schedule) == ("adam", "onecycle") and 0.99 < TARGET < 1


def test_record_trains_measures_and_saves(tiny_data, tmp_path, monkeypatch):
    """The recipe on the small synthetic task instead of MNIST: the result's shape and the checkpoint."""
    train, test = tiny_data
    loaded = []

    def fake_load(is_train, root, *, device, limit):
        loaded.append((is_train, root, limit))
        return (train if is_train else test)[:limit]

    monkeypatch.setattr(record_module, "load_tensors", fake_load)
    lines = []
    ck = tmp_path / "record.ckpt"
    result = record(2, device="cpu", root="ROOT", checkpoint=ck, limit=96, log=lines.append)
    assert loaded == [(True, "ROOT", 96), (False, "ROOT", 96)]
    assert isinstance(result, RecordResult) and isinstance(result.environment, Environment)
    assert isinstance(result.recipe, RecordRecipe) and result.recipe.model == "ModernCNN"
    assert result.recipe.epochs == 2 and result.recipe.loss == "cross-entropy, label smoothing 0.1"
    assert len(result.accuracy_per_epoch) == 2 and len(lines) == 2
    assert result.test_accuracy == result.accuracy_per_epoch[-1]
    assert result.best_epoch_accuracy == max(result.accuracy_per_epoch)
    assert result.training_images == result.test_images == 96 and result.train_seconds > 0
    assert result.target == TARGET and result.reached_target is (result.test_accuracy >= TARGET)
    assert result.checkpoint == SavedCheckpoint("record.ckpt", sha256_of(ck))
    assert record(1, device="cpu", limit=32, log=lambda m: None).checkpoint is None


@pytest.mark.slow
def test_record_recipe_runs_and_reports(mnist_root, tmp_path):
    ck = tmp_path / "record.ckpt"
    result = record(1, root=mnist_root, checkpoint=ck, limit=256, log=lambda m: None)
    assert result.training_images == 256 and result.recipe.model == "ModernCNN"
    assert len(result.accuracy_per_epoch) == 1 and result.reached_target is False
    assert result.checkpoint.sha256 == sha256_of(ck)
    path = write_json(result, tmp_path / "record.json")
    assert from_dict(RecordResult, json.loads(path.read_text())) == result
