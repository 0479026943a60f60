"""mnist_course.recipe: budgets, optimizers and loaders from a budget, build_run, fair training runs, result tables."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mnist_course import recipe
from mnist_course.augment import AugmentedLoader
from mnist_course.data import TensorLoader
from mnist_course.history import History
from mnist_course.models import LeNet, LeNet5, create_model
from mnist_course.recipe import Budget, Result, Run, build_run, make_loader, make_optimizer, train_under_budget


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


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"optimizer": "rmsprop"}, r"optimizer must be one of \('adam', 'sgd'\), got 'rmsprop'"),
        ({"schedule": "cosine"}, "schedule must be one of"),
        ({"anneal": "step"}, "anneal must be one of"),
        ({"epochs": 0}, "Budget needs epochs >= 1; got Budget"),
        ({"batch_size": 0}, "Budget needs batch_size >= 1"),
        ({"lr": -1}, "Budget needs lr > 0"),
        ({"warmup": 1}, "Budget needs 0 < warmup < 1"),
        ({"beta2": 1}, "Budget needs 0 <= beta2 < 1"),
        ({"label_smoothing": 1.0}, "Budget needs 0 <= label_smoothing < 1"),
        ({"epochs": 0, "lr": 0}, "Budget needs epochs >= 1, lr > 0;"),
    ],
)
def test_budget_says_what_it_needs(bad, message):
    with pytest.raises(ValueError, match=message):
        Budget(**bad)


def test_budget_defaults_leave_the_speed_levers_off():
    b = Budget()
    assert (b.augment, b.channels_last, b.bf16, b.fused) == (False, False, False, False)
    with pytest.raises(AttributeError):
        b.epochs = 5  # frozen: change with with_()


def test_make_optimizer_follows_the_budget():
    model = create_model("lenet")
    opt, sched = make_optimizer(model, Budget(epochs=2), steps_per_epoch=10)
    assert isinstance(opt, torch.optim.Adam) and sched.total_steps == 20
    opt, sched = make_optimizer(model, Budget(optimizer="sgd", schedule="constant", lr=0.05), 10)
    assert isinstance(opt, torch.optim.SGD) and sched is None and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["nesterov"] is True
    fast = Budget(epochs=1, lr=5e-3, warmup=0.2, anneal="linear", beta2=0.99, fused=True)
    opt, sched = make_optimizer(model, fast, 20)
    assert opt.param_groups[0]["betas"][1] == 0.99 and opt.defaults["fused"] is True  # beta1 cycles
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs.index(max(lrs)) == 3 and max(lrs) == pytest.approx(5e-3), "the peak after 20% of the 20 steps"
    falls = [a - b for a, b in zip(lrs[3:], lrs[4:], strict=False)]
    assert falls == pytest.approx([falls[0]] * len(falls)), "a linear anneal falls by equal steps"
    assert not make_optimizer(model, Budget(), 10)[0].defaults.get("fused"), "fused only when the budget says"


def test_make_optimizer_falls_back_when_fused_is_unavailable(monkeypatch):
    real = torch.optim.Adam.__init__

    def old_torch(self, params, *args, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        real(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "__init__", old_torch)
    opt, _ = make_optimizer(create_model("lenet"), Budget(fused=True), 10)
    assert isinstance(opt, torch.optim.Adam) and not opt.defaults.get("fused")


def test_budget_loss_applies_label_smoothing():
    out, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.equal(Budget().loss_fn(out, y), torch.nn.functional.cross_entropy(out, y))
    smooth = Budget(label_smoothing=0.1).loss_fn(out, y)
    assert torch.equal(smooth, torch.nn.functional.cross_entropy(out, y, label_smoothing=0.1))
    assert not torch.equal(smooth, Budget().loss_fn(out, y))


def test_make_loader_for_each_kind_of_data(tiny_data):
    train, _ = tiny_data
    budget = Budget(batch_size=100, seed=4)
    tensor_loader = make_loader(train, budget)
    assert isinstance(tensor_loader, TensorLoader) and tensor_loader.shuffle and len(tensor_loader) == 4
    again = make_loader(train, budget)
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(tensor_loader, again, strict=True)), "seeded shuffling"
    data_loader = make_loader(TensorDataset(train.images, train.labels), budget)
    assert isinstance(data_loader, DataLoader) and data_loader.batch_size == 100 and len(data_loader) == 4
    given = [(train.images[:5], train.labels[:5])]
    assert make_loader(given, budget) is given
    augmented = make_loader(train, budget.with_(augment=True))
    assert isinstance(augmented, AugmentedLoader) and isinstance(augmented.loader, TensorLoader)


def test_build_run_same_seed_same_initial_weights(tiny_data):
    train, _ = tiny_data
    torch.manual_seed(1)
    a = build_run(LeNet, train, Budget(seed=3), device="cpu")
    torch.manual_seed(2)  # the global RNG state before the call must not matter
    b = build_run(LeNet, train, Budget(seed=3), device="cpu")
    c = build_run(LeNet, train, Budget(seed=4), device="cpu")
    assert isinstance(a, Run) and a.budget == Budget(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.model.parameters(), c.model.parameters(), strict=True))
    assert all(torch.equal(x, y) for (_, x), (_, y) in zip(a.loader, b.loader, strict=True)), "the same batches"


def test_build_run_assembles_the_budget(tiny_data):
    train, _ = tiny_data
    run = build_run(LeNet, train, Budget(epochs=2, batch_size=64), device="cpu")
    assert isinstance(run.loader, TensorLoader) and len(run.loader) == 5
    assert isinstance(run.optimizer, torch.optim.Adam) and run.scheduler.total_steps == 10
    assert {id(p) for p in run.model.parameters()} == {id(p) for g in run.optimizer.param_groups for p in g["params"]}
    assert run.autocast is None and next(run.model.parameters()).device.type == "cpu"
    assert build_run(LeNet, train, Budget(schedule="constant"), device="cpu").scheduler is None


def test_build_run_with_augment_wraps_the_loader(tiny_data):
    train, _ = tiny_data
    run = build_run(LeNet, train, Budget(augment=True, batch_size=64, seed=5), device="cpu")
    assert isinstance(run.loader, AugmentedLoader) and isinstance(run.loader.loader, TensorLoader)
    (x, y), (raw_x, raw_y) = next(iter(run.loader)), next(iter(TensorLoader(train, 64, shuffle=True, seed=5)))
    assert torch.equal(y, raw_y) and not torch.allclose(x, raw_x), "the same batch, augmented"
    assert not isinstance(build_run(LeNet, train, Budget(), device="cpu").loader, AugmentedLoader)


def test_build_run_uses_bf16_only_where_native(tiny_data, monkeypatch):
    train, _ = tiny_data
    run = build_run(LeNet5, train, Budget(channels_last=True, bf16=True), device="cpu")
    assert run.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(recipe, "native_bf16", lambda device: False)
    assert build_run(LeNet5, train, Budget(bf16=True), device="cpu").autocast is None
    monkeypatch.setattr(recipe, "native_bf16", lambda device: True)
    assert build_run(LeNet5, train, Budget(bf16=True), device="cpu").autocast is torch.bfloat16
    assert build_run(LeNet5, train, Budget(), device="cpu").autocast is None


def test_run_fit_until_stops_at_the_target(tiny_data):
    train, test = tiny_data[0][:96], tiny_data[1][:50]
    lines = []
    run = build_run(LeNet, train, Budget(epochs=4, batch_size=32, lr=5e-3), device="cpu")
    history = run.fit_until(test, target=0.0, log=lines.append)
    assert isinstance(history, History) and len(history.epochs) == 1, "0% is reached after the first epoch"
    assert len(lines) == 1 and lines[0].startswith("epoch 1/4: accuracy ")
    run = build_run(LeNet, train, Budget(epochs=2, batch_size=32, lr=5e-3), device="cpu")
    history = run.fit_until(test, target=1.01)
    assert [e.epoch for e in history.epochs] == [1, 2], "an unreachable target trains every epoch"
    assert run.scheduler.last_epoch == 2 * len(run.loader) == 6


def test_run_fit_trains_the_budgets_epochs(tiny_data):
    train, test = tiny_data
    budget = Budget(epochs=2, batch_size=64, label_smoothing=0.1, schedule="constant")
    run = build_run(LeNet, train, budget, device="cpu")
    history = run.fit(test, progress=False)
    assert [e.epoch for e in history.epochs] == [1, 2] and run.model.training
    assert len(run.fit(test, epochs=3, history=history, progress=False).epochs) == 3, "a constant schedule extends"


def test_train_under_budget_is_reproducible_and_measured(tiny_data):
    train, test = tiny_data
    budget = Budget(epochs=2, batch_size=32, lr=5e-3)
    torch.manual_seed(1)
    a = train_under_budget("lenet", LeNet, train, test, budget, progress=False)
    torch.manual_seed(2)  # the global RNG state before the call must not matter
    b = train_under_budget("lenet", LeNet, train, test, budget, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True))
    assert isinstance(a, Result) and a.accuracy == b.accuracy > 0.5
    assert a.accuracy == a.history.last.eval_accuracy
    assert a.parameters == 44_426 and a.train_seconds > 0
    assert len(a.history.epochs) == 2


def test_train_over_seeds_gives_each_seed_its_run_and_the_spread(tiny_data):
    from mnist_course.recipe import Comparison, SeedRuns, train_over_seeds

    train, val = tiny_data
    budget = Budget(epochs=1, batch_size=64, seed=7)
    runs = train_over_seeds("lenet", LeNet, train, val, budget, seeds=(0, 1))
    single = train_under_budget("lenet", LeNet, train, val, budget.with_(seed=1), progress=False)
    assert isinstance(runs, SeedRuns) and runs.accuracies[1] == single.accuracy
    assert runs.low == min(runs.accuracies) <= runs.mean <= runs.high == max(runs.accuracies)
    assert str(runs).endswith("over 2 seeds)") and runs.mean_seconds > 0
    with pytest.raises(ValueError, match="at least two seeds"):
        train_over_seeds("lenet", LeNet, train, val, budget, seeds=(0,))
    table = Comparison([runs])
    assert table["lenet"] is runs and "44,426" in str(table) and repr(table) == str(table)
    assert "<td>lenet</td>" in table._repr_html_() and str(table).split()[:3] == ["model", "parameters", "mean"]
    with pytest.raises(KeyError, match="have: lenet"):
        table["cnn"]


def test_a_model_beats_another_only_when_every_seed_is_better():
    from mnist_course.recipe import SeedRuns

    def runs(*accuracies):
        return SeedRuns("m", [Result("m", 1, a, 1.0, None, None) for a in accuracies])

    assert runs(0.95, 0.96).beats(runs(0.90, 0.94))
    assert not runs(0.95, 0.99).beats(runs(0.90, 0.96)), "overlapping spreads: no winner"
    assert not runs(0.95, 0.96).beats(runs(0.95, 0.96))
