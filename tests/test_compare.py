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
    bads = (
        {"optimizer": "rmsprop"},
        {"schedule": "cosine"},
        {"epochs": 0},
        {"lr": 0},
        {"anneal": "step"},
        {"warmup": 0},
        {"warmup": 1},
        {"beta2": 1},
        {"label_smoothing": 1.0},
        {"label_smoothing": -0.1},
    )
    for bad in bads:
        with pytest.raises(ValueError):
            Budget(**bad)


def test_make_optimizer_follows_the_budget():
    model = create_model("lenet")
    opt, sched = make_optimizer(model, Budget(epochs=2), steps_per_epoch=10)
    assert isinstance(opt, torch.optim.Adam) and sched.total_steps == 20
    opt, sched = make_optimizer(model, Budget(optimizer="sgd", schedule="constant", lr=0.05), 10)
    assert isinstance(opt, torch.optim.SGD) and sched is None and opt.param_groups[0]["momentum"] == 0.9
    fast = Budget(epochs=1, lr=5e-3, warmup=0.2, anneal="linear", beta2=0.99)
    opt, sched = make_optimizer(model, fast, 20, fused=True)
    assert opt.param_groups[0]["betas"][1] == 0.99 and opt.defaults["fused"] is True  # beta1 cycles
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs.index(max(lrs)) == 3 and max(lrs) == pytest.approx(5e-3), "the peak after 20% of the 20 steps"
    falls = [a - b for a, b in zip(lrs[3:], lrs[4:], strict=False)]
    assert falls == pytest.approx([falls[0]] * len(falls)), "a linear anneal falls by equal steps"


def test_make_optimizer_falls_back_when_fused_is_unavailable(monkeypatch):
    real = torch.optim.Adam.__init__

    def old_torch(self, params, *args, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        real(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "__init__", old_torch)
    opt, _ = make_optimizer(create_model("lenet"), Budget(), 10, fused=True)
    assert isinstance(opt, torch.optim.Adam) and not opt.defaults.get("fused")


def test_budget_loss_applies_label_smoothing():
    out, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.equal(Budget().loss_fn(out, y), torch.nn.functional.cross_entropy(out, y))
    smooth = Budget(label_smoothing=0.1).loss_fn(out, y)
    assert torch.equal(smooth, torch.nn.functional.cross_entropy(out, y, label_smoothing=0.1))
    assert not torch.equal(smooth, Budget().loss_fn(out, y))


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
