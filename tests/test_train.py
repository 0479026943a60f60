"""mnist_course.train, checkpoint and evaluate: the fit loop, history, resume, errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.serialization
from torch import nn

from mnist_course import checkpoint as ckpt
from mnist_course.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from mnist_course.data import TensorData, TensorLoader
from mnist_course.evaluate import confusion_matrix, evaluate, most_confused, per_class_accuracy, predict
from mnist_course.models import create_model
from mnist_course.train import History, describe_device, fit, native_bf16, pick_device, seed_everything


def test_pick_device_on_this_machine():
    device = pick_device()
    assert device.type in ("cuda", "mps", "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    assert "CPU" in describe_device("cpu") and "threads" in describe_device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")


def test_seed_everything_makes_runs_repeat():
    seed_everything(5)
    a = torch.rand(3), create_model("lenet5").state_dict()["0.weight"]
    seed_everything(5)
    b = torch.rand(3), create_model("lenet5").state_dict()["0.weight"]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _setup(name="pytorch-examples-net", seed=0, lr=3e-3):
    seed_everything(seed)
    model = create_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return model, optimizer


def test_fit_learns_and_records_history_with_tensor_loader(tiny_data):
    train, test = tiny_data
    model, opt = _setup("lenet5")
    loader = TensorLoader(train, 32, shuffle=True, seed=0)
    history = fit(model, loader, test, optimizer=opt, epochs=3, progress=False)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert len(history.batches) == 3 * len(loader)
    assert history.batches[-1][0] == history.examples_seen == 3 * len(train)
    assert history.epochs[-1]["test_accuracy"] > 0.9
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.train_seconds > 0
    assert History.from_dict(history.to_dict()) == history


def test_fit_with_bf16_autocast_keeps_float32_weights(tiny_data, monkeypatch):
    train, test = tiny_data
    seed_everything(0)
    model = create_model("lenet").to(memory_format=torch.channels_last)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(out.dtype) if module.training else None)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    history = fit(
        model, TensorLoader(train, 32), test, optimizer=opt, epochs=2, progress=False, autocast=torch.bfloat16
    )
    assert set(seen) == {torch.bfloat16}, "the training forward passes ran in bf16"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert history.epochs[-1]["test_accuracy"] > 0.5
    assert isinstance(native_bf16("cpu"), bool) and native_bf16("meta") is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert native_bf16("cuda") is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert native_bf16("cuda") is False, "emulated bf16 (e.g. on a T4) does not count"


def test_fit_continues_a_given_history(tiny_data):
    train, test = tiny_data
    model, opt = _setup("lenet")
    loader = TensorLoader(train, 64)
    history = fit(model, loader, test, optimizer=opt, epochs=1, progress=False)
    same = fit(model, loader, test, optimizer=opt, epochs=3, progress=False, history=history)
    assert same is history and [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert history.examples_seen == 3 * len(train)


def test_fit_works_with_a_dataloader_and_a_scheduler(tiny_data):
    train, test = tiny_data
    model, opt = _setup("convnet-bn")
    ds = torch.utils.data.TensorDataset(train.images, train.labels)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=2 * len(loader))
    history = fit(
        model, loader, test, optimizer=opt, epochs=2, scheduler=sched, scheduler_interval="batch", progress=False
    )
    assert len(history.epochs) == 2 and sched.last_epoch == 2 * len(loader)
    assert history.epochs[-1]["test_accuracy"] > 0.5


def test_fit_shows_a_progress_bar_on_stderr(tiny_data, capsys):
    train, _ = tiny_data
    model, opt = _setup("lenet")
    fit(model, TensorLoader(train, 64), optimizer=opt, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "acc=" in err


def test_non_finite_loss_names_epoch_and_batch(tiny_data):
    train, _ = tiny_data
    images = train.images.clone()
    images[100] = float("nan")
    model, opt = _setup("lenet")
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 4\b.*learning rate"):
        fit(model, TensorLoader(TensorData(images, train.labels), 32), optimizer=opt, epochs=1, progress=False)


def test_fit_argument_errors(tiny_data):
    train, _ = tiny_data
    model, opt = _setup()
    with pytest.raises(ValueError, match="scheduler_interval"):
        fit(model, TensorLoader(train), optimizer=opt, epochs=1, scheduler_interval="step")
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        fit(model, TensorLoader(train), optimizer=opt, epochs=1, resume=True)


@pytest.mark.parametrize("path", ["tensor", "dataloader"])
def test_resume_gives_bit_identical_weights(tiny_data, tmp_path, path):
    """2 epochs straight == 1 epoch + save + load into fresh objects + 1 epoch (dropout, shuffling, scheduler)."""
    train, test = tiny_data

    def run(epochs, checkpoint=None, resume=False, fresh_seed=0):
        model, opt = _setup("pytorch-examples-net", seed=fresh_seed)
        if path == "tensor":
            loader = TensorLoader(train, 32, shuffle=True, seed=fresh_seed)
        else:
            ds = torch.utils.data.TensorDataset(train.images, train.labels)
            loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        h = fit(
            model,
            loader,
            test,
            optimizer=opt,
            epochs=epochs,
            scheduler=sched,
            progress=False,
            checkpoint=checkpoint,
            resume=resume,
        )
        return model, h

    straight, h_straight = run(2)
    ck = tmp_path / "ck.pt"
    run(1, checkpoint=ck)
    resumed, h_resumed = run(2, checkpoint=ck, resume=True, fresh_seed=123)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert h_resumed.batches == h_straight.batches
    assert [e["test_loss"] for e in h_resumed.epochs] == [e["test_loss"] for e in h_straight.epochs]


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt = _setup("lenet")
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model, opt, epoch=1)
    before = path.read_bytes()
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    monkeypatch.undo()
    assert load_checkpoint(path, create_model("lenet")).epoch == 1


def test_checkpoint_saved_on_a_gpu_loads_on_the_cpu(tmp_path, monkeypatch):
    """Storages are tagged 'cuda:0' in the file, as torch.save does on a GPU machine."""
    model, opt = _setup("lenet")
    fit(model, [(torch.randn(8, 1, 28, 28), torch.arange(8))], optimizer=opt, epochs=1, progress=False)
    path = tmp_path / "gpu.pt"
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    save_checkpoint(path, model, opt, epoch=1)
    monkeypatch.undo()
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    fresh = create_model("lenet")
    fresh_opt = torch.optim.Adam(fresh.parameters())
    info = load_checkpoint(path, fresh, fresh_opt)
    assert info.epoch == 1 and info.model_name == "lenet"
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b) and b.device.type == "cpu"


def test_wrong_architecture_and_bad_files_give_clear_errors(tmp_path):
    model, opt = _setup("lenet5")
    path = save_checkpoint(tmp_path / "lenet5.pt", model, opt)
    with pytest.raises(ValueError, match="'lenet5' model; it cannot be loaded into a 'cnn' model"):
        load_checkpoint(path, create_model("cnn"))

    class Custom(nn.Linear):
        pass

    save_checkpoint(tmp_path / "custom.pt", Custom(3, 2))
    with pytest.raises(ValueError, match="different 'Custom' architecture"):
        load_checkpoint(tmp_path / "custom.pt", Custom(4, 2))
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(ValueError, match="could not be read as a checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a mnist_course checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


def test_optimizer_updates_detects_an_optimizer_built_on_another_model():
    old, new = create_model("lenet"), create_model("lenet")
    assert ckpt.optimizer_updates(torch.optim.SGD(new.parameters(), lr=0.1), new)
    assert not ckpt.optimizer_updates(torch.optim.SGD(old.parameters(), lr=0.1), new)
    assert not ckpt.optimizer_updates(torch.optim.SGD(list(new.parameters())[:2], lr=0.1), new)


def test_rng_state_round_trip():
    state = ckpt.rng_state()
    a = torch.rand(2), __import__("random").random(), __import__("numpy").random.rand()
    ckpt.set_rng_state(state)
    b = torch.rand(2), __import__("random").random(), __import__("numpy").random.rand()
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_evaluation_functions():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2, 2, 1, 1, 2])
    cm = confusion_matrix(predicted, labels, 3)
    assert cm.tolist() == [[1, 1, 0], [1, 2, 0], [0, 2, 3]]
    assert per_class_accuracy(predicted, labels, 3).tolist() == pytest.approx([0.5, 2 / 3, 0.6])
    assert most_confused(cm, 2) == [(2, 1, 2), (0, 1, 1)]
    assert torch.isnan(per_class_accuracy(predicted, labels, 4)[3])
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(predicted[:3], labels)


def test_evaluate_and_predict_restore_mode_and_agree(tiny_data):
    _, test = tiny_data
    model = create_model("pytorch-examples-net").train()
    before = copy.deepcopy(model.state_dict())
    result = evaluate(model, test)
    preds = predict(model, test)
    assert model.training
    assert result.total == 100 and result.accuracy == pytest.approx(preds.accuracy)
    assert torch.allclose(preds.probabilities.sum(1), torch.ones(100), atol=1e-5)
    assert len(preds.mistakes) == 100 - result.correct
    for true, guess, count in most_confused(confusion_matrix(preds.predicted, preds.labels), 3):
        idx = preds.where(true, guess)
        assert len(idx) == count and (preds.labels[idx] == true).all() and (preds.predicted[idx] == guess).all()
    assert all(torch.equal(a, b) for a, b in zip(before.values(), model.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="no examples"):
        evaluate(model, [])
