"""mnist_course.compare: budgets, fair training runs, throughput, result tables; and table."""

from __future__ import annotations

import pytest
import torch

from mnist_course.compare import Budget, Results, make_optimizer, throughput, train_under_budget
from mnist_course.models import MODELS, LeNet, create_model
from mnist_course.table import html_table, text_table


def test_budget_validates_and_copies():
    b = Budget(epochs=2)
    assert b.with_(optimizer="sgd").optimizer == "sgd" and b.optimizer == "adam"
    for bad in ({"optimizer": "rmsprop"}, {"schedule": "cosine"}, {"epochs": 0}, {"lr": 0}):
        with pytest.raises(ValueError):
            Budget(**bad)


def test_make_optimizer_follows_the_budget():
    model = create_model("lenet")
    opt, sched = make_optimizer(model, Budget(epochs=2), steps_per_epoch=10)
    assert isinstance(opt, torch.optim.Adam) and sched.total_steps == 20
    opt, sched = make_optimizer(model, Budget(optimizer="sgd", schedule="constant", lr=0.05), 10)
    assert isinstance(opt, torch.optim.SGD) and sched is None and opt.param_groups[0]["momentum"] == 0.9


def test_train_under_budget_is_reproducible_and_measured(tiny_data):
    train, test = tiny_data
    budget = Budget(epochs=2, batch_size=32, lr=5e-3)
    torch.manual_seed(1)
    a = train_under_budget("lenet", LeNet, train, test, budget, progress=False)
    torch.manual_seed(2)  # the global RNG state before the call must not matter
    b = train_under_budget("lenet", LeNet, train, test, budget, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    assert a.test_accuracy == b.test_accuracy > 0.5
    assert a.parameters == 44_426 and a.train_seconds > 0 and a.images_per_second > 0
    assert len(a.history.epochs) == 2


def test_throughput_counts_images_and_restores_mode(tiny_data):
    _, test = tiny_data
    model = create_model("pytorch-examples-net").train()
    assert throughput(model, test) > 0 and model.training


def test_results_table(tiny_data):
    train, test = tiny_data
    budget = Budget(epochs=1, batch_size=64)
    results = Results(
        train_under_budget(n, MODELS[n].factory, train, test, budget, progress=False) for n in ("lenet", "convnet-bn")
    )
    assert results["convnet-bn"].parameters == 29_034 and results.best() in results
    text = str(results)
    assert text.splitlines()[0].split()[:3] == ["model", "parameters", "test"] and "44,426" in text
    assert "<td>convnet-bn</td>" in results._repr_html_()
    with pytest.raises(KeyError, match="have: lenet, convnet-bn"):
        results["cnn"]


def test_text_and_html_tables_align_and_escape():
    assert text_table(["a", "bb"], [["xyz", "1"], ["p", "22"]], right=(1,)).splitlines() == [
        "a    bb",
        "---  --",
        "xyz   1",
        "p    22",
    ]
    assert "&lt;b&gt;" in html_table(["x"], [["<b>"]])
