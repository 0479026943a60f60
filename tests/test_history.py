"""mnist_course.history: EpochRecord and History, and their plain-dict form."""

from __future__ import annotations

import json

import pytest

from mnist_course.history import EpochRecord, History


def two_epochs() -> History:
    h = History()
    h.batches += [[32, 2.0], [64, 1.5], [96, 1.0], [128, 0.8]]
    h.epochs.append(EpochRecord(1, 1.75, 0.4, 1.2, 0.6, 64, 1.5))
    h.epochs.append(EpochRecord(2, 0.9, 0.7, 0.8, 0.75, 128, 2.0))
    return h


def test_history_properties():
    h = two_epochs()
    assert h.examples_seen == 128 and h.train_seconds == 3.5 and h.last.epoch == 2
    empty = History()
    assert empty.examples_seen == 0 and empty.train_seconds == 0.0
    with pytest.raises(ValueError, match="no epochs yet"):
        _ = empty.last


def test_train_seconds_skips_epochs_without_a_time():
    h = History(
        epochs=[EpochRecord(1, 1.0, None, None, None, 10, None), EpochRecord(2, 0.5, None, None, None, 20, 2.5)]
    )
    assert h.train_seconds == 2.5


def test_to_dict_is_json_and_round_trips():
    h = two_epochs()
    data = json.loads(json.dumps(h.to_dict()))
    assert data["epochs"][0] == {
        "epoch": 1,
        "train_loss": 1.75,
        "train_accuracy": 0.4,
        "eval_loss": 1.2,
        "eval_accuracy": 0.6,
        "examples_seen": 64,
        "seconds": 1.5,
    }
    back = History.from_dict(data)
    assert back == h and all(isinstance(e, EpochRecord) for e in back.epochs)


def test_from_dict_reads_the_test_keys_of_version_0_1():
    old = {
        "batches": [(50, 1.0)],
        "epochs": [
            {
                "epoch": 1,
                "train_loss": 0.5,
                "train_accuracy": 0.8,
                "test_loss": 0.4,
                "test_accuracy": 0.9,
                "examples_seen": 50,
                "seconds": 1.0,
            }
        ],
    }
    h = History.from_dict(old)
    assert h.last == EpochRecord(1, 0.5, 0.8, 0.4, 0.9, 50, 1.0)
    assert h.batches == [[50, 1.0]]
