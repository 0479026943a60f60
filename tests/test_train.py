"""mnist_course.train: train_one_epoch and the fit loop: history, resume, progress, errors, modes."""

from __future__ import annotations

import pytest
import torch
from test_evaluate import Exploding
from torch import nn

from mnist_course.data import TensorData, TensorLoader
from mnist_course.device import seed_everything
from mnist_course.errors import CheckpointError, DataError, TrainingDiverged
from mnist_course.history import EpochRecord, History
from mnist_course.models import create_model
from mnist_course.train import DIVERGED_LOSS_FACTOR, EpochStats, fit, train_one_epoch


def _setup(name="pytorch-examples-net", seed=0, lr=3e-3):
    seed_everything(seed)
    model = create_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return model, optimizer


def test_train_one_epoch_measures_the_epoch(tiny_data):
    train, _ = tiny_data
    model, opt = _setup("lenet")
    model.eval()
    loader = TensorLoader(train, 64)
    stats = train_one_epoch(model, loader, opt)
    assert isinstance(stats, EpochStats) and model.training, "train_one_epoch puts the model in train mode"
    assert stats.examples == len(train) and [n for n, _ in stats.batch_losses] == [64] * 5
    assert stats.loss == pytest.approx(sum(n * v for n, v in stats.batch_losses) / len(train))
    assert 0 <= stats.accuracy <= 1 and stats.seconds > 0


def test_fit_learns_and_records_history_with_tensor_loader(tiny_data):
    train, test = tiny_data
    model, opt = _setup("lenet5")
    loader = TensorLoader(train, 32, shuffle=True, seed=0)
    history = fit(model, loader, test, optimizer=opt, epochs=3, progress=False)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert all(isinstance(e, EpochRecord) for e in history.epochs)
    assert len(history.batches) == 3 * len(loader)
    assert history.batches[-1][0] == history.examples_seen == 3 * len(train)
    assert history.epochs[-1].eval_accuracy > 0.9
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert history.train_seconds > 0
    assert History.from_dict(history.to_dict()) == history


def test_fit_without_eval_data_records_no_eval(tiny_data):
    train, _ = tiny_data
    model, opt = _setup("lenet")
    history = fit(model, TensorLoader(train, 64), optimizer=opt, epochs=1, progress=False)
    assert history.last.eval_loss is None and history.last.eval_accuracy is None
    assert history.last.train_accuracy is not None and history.last.examples_seen == len(train)


def test_fit_with_bf16_autocast_keeps_float32_weights(tiny_data):
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
    assert history.epochs[-1].eval_accuracy > 0.5


def test_fit_continues_a_given_history(tiny_data):
    train, test = tiny_data
    model, opt = _setup("lenet")
    loader = TensorLoader(train, 64)
    history = fit(model, loader, test, optimizer=opt, epochs=1, progress=False)
    same = fit(model, loader, test, optimizer=opt, epochs=3, progress=False, history=history)
    assert same is history and [e.epoch for e in history.epochs] == [1, 2, 3]
    assert history.examples_seen == 3 * len(train)


def test_fit_works_with_a_dataloader_and_a_scheduler(tiny_data):
    train, test = tiny_data
    model, opt = _setup("convnet-bn")
    ds = torch.utils.data.TensorDataset(train.images, train.labels)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=2 * len(loader))
    history = fit(model, loader, test, optimizer=opt, epochs=2, scheduler=sched, progress=False)
    assert len(history.epochs) == 2 and sched.last_epoch == 2 * len(loader), "the scheduler steps every batch"
    assert history.epochs[-1].eval_accuracy > 0.5


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
    with pytest.raises(FloatingPointError, match=r"epoch 1/1, batch 4\b.*learning rate"):
        fit(model, TensorLoader(TensorData(images, train.labels), 32), optimizer=opt, epochs=1, progress=False)


def test_fit_argument_errors(tiny_data):
    train, _ = tiny_data
    model, opt = _setup()
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        fit(model, TensorLoader(train), optimizer=opt, epochs=-1)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        fit(model, TensorLoader(train), optimizer=opt, epochs=1, resume=True)
    with pytest.raises(TypeError):
        fit(model, TensorLoader(train), optimizer=opt, epochs=1, scheduler_interval="batch")  # gone: always per batch
    with pytest.raises(TypeError):
        fit(model, TensorLoader(train), optimizer=opt, epochs=1, device="cpu")  # gone: the model's device


def test_fit_on_an_empty_loader_raises(tiny_data):
    train, _ = tiny_data
    model, opt = _setup("lenet")
    for empty in ([], TensorLoader(train[:0], 32), TensorLoader(train[:10], 32, drop_last=True)):
        with pytest.raises(ValueError, match="the training data is empty"):
            fit(model, empty, optimizer=opt, epochs=1, progress=False)


def test_fit_of_zero_more_epochs_does_nothing(tiny_data):
    train, _ = tiny_data
    model, opt = _setup("lenet")
    before = [p.clone() for p in model.parameters()]
    history = fit(model, TensorLoader(train, 64), optimizer=opt, epochs=0, progress=False)
    assert history.epochs == [] and all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def _modes(model: nn.Module) -> set[bool]:
    return {m.training for m in model.modules()}


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
def test_fit_leaves_the_mode_as_it_found_it(tiny_data, start):
    train, test = tiny_data
    model = Exploding().train(start)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    fit(model, TensorLoader(train, 64), test, optimizer=opt, epochs=1, progress=False)
    assert _modes(model) == {start}


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
@pytest.mark.parametrize("failure", ["forward", "nan-loss"])
def test_fit_leaves_the_mode_as_it_found_it_when_it_raises(tiny_data, start, failure):
    train, test = tiny_data
    model = Exploding().train(start)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    if failure == "forward":
        model.fail = True
        with pytest.raises(RuntimeError, match="forward exploded"):
            fit(model, TensorLoader(train, 64), test, optimizer=opt, epochs=1, progress=False)
    else:
        with pytest.raises(FloatingPointError, match="became nan"):
            fit(
                model,
                TensorLoader(train, 64),
                test,
                optimizer=opt,
                epochs=1,
                progress=False,
                loss_fn=lambda out, y: out.sum() * float("nan"),
            )
    assert _modes(model) == {start}


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
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=len(loader), gamma=0.5)  # halve once an epoch
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
    assert [e.eval_loss for e in h_resumed.epochs] == [e.eval_loss for e in h_straight.epochs]


def test_resume_without_a_checkpoint_file_starts_afresh(tiny_data, tmp_path):
    train, _ = tiny_data
    model, opt = _setup("lenet")
    ck = tmp_path / "new.pt"
    history = fit(model, TensorLoader(train, 64), optimizer=opt, epochs=1, progress=False, checkpoint=ck, resume=True)
    assert [e.epoch for e in history.epochs] == [1] and ck.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_runs_on_the_models_device(tiny_data):
    train, test = tiny_data  # on the CPU: fit moves each batch to the model
    model, opt = _setup("lenet")
    model.cuda()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].device.type))
    history = fit(model, TensorLoader(train, 64), test, optimizer=opt, epochs=1, progress=False)
    assert set(seen) == {"cuda"} and history.last.eval_accuracy is not None


@pytest.mark.parametrize("make_optimizer", [lambda p: torch.optim.Adam(p, lr=10), lambda p: torch.optim.SGD(p, lr=1e4)])
def test_a_diverging_run_stops_with_a_clear_message(tiny_data, make_optimizer):
    """The issue's repro: Adam at lr 10 used to reach loss 7e30 and 10% accuracy without a word."""
    train, test = tiny_data
    seed_everything(0)
    model = create_model("lenet5")
    with pytest.raises(
        TrainingDiverged, match=r"training diverged: the loss became .* at epoch \d+/5, batch \d+"
    ) as err:
        fit(
            model, TensorLoader(train, 32), test, optimizer=make_optimizer(model.parameters()), epochs=5, progress=False
        )
    assert isinstance(err.value, FloatingPointError), "still a FloatingPointError for code that catches that"
    assert f"more than {DIVERGED_LOSS_FACTOR}x the 2.30 of guessing" in str(err.value)


def test_the_divergence_rule_leaves_a_normal_run_alone(tiny_data):
    train, test = tiny_data
    model, opt = _setup("lenet5", lr=3e-3)
    history = fit(model, TensorLoader(train, 32, shuffle=True, seed=0), test, optimizer=opt, epochs=2, progress=False)
    assert max(loss for _, loss in history.batches) < DIVERGED_LOSS_FACTOR * 2.303


def test_fit_never_overwrites_an_existing_file(tiny_data, tmp_path):
    train, _ = tiny_data
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    model, opt = _setup("lenet")
    with pytest.raises(DataError, match=r"photo\.jpg already exists: resume=True continues that run, overwrite=True"):
        fit(model, TensorLoader(train, 64), optimizer=opt, epochs=1, progress=False, checkpoint=photo)
    assert photo.read_bytes() == b"\xff\xd8 a photo"


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_an_unwritable_checkpoint_path_fails_before_the_first_batch(tiny_data, tmp_path, where):
    train, _ = tiny_data
    (tmp_path / "file").write_text("x")
    path = tmp_path if where == "folder" else tmp_path / "file" / "run.ckpt"
    model, opt = _setup("lenet")
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(DataError, match="is a folder|cannot write the checkpoint"):
        fit(model, TensorLoader(train, 64), optimizer=opt, epochs=1, progress=False, checkpoint=path)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "no batch was trained"


def test_fit_stores_extra_data_in_every_checkpoint(tiny_data, tmp_path):
    from mnist_course.checkpoint import read_checkpoint

    train, _ = tiny_data
    model, opt = _setup("lenet")
    ck = tmp_path / "run.ckpt"
    fit(model, TensorLoader(train, 64), optimizer=opt, epochs=1, progress=False, checkpoint=ck, extra={"lr": 3e-3})
    assert read_checkpoint(ck)["extra"] == {"lr": 3e-3}


def test_resume_from_a_checkpoint_without_history_continues_after_its_epoch(tiny_data, tmp_path):
    from mnist_course.checkpoint import save_checkpoint

    train, _ = tiny_data
    model, opt = _setup("lenet")
    ck = save_checkpoint(tmp_path / "bare.ckpt", model, opt, epoch=1)  # saved by hand: no history
    history = fit(model, TensorLoader(train, 64), optimizer=opt, epochs=2, progress=False, checkpoint=ck, resume=True)
    assert [e.epoch for e in history.epochs] == [2], "epoch 1 is not trained again"


def test_a_refused_resume_changes_nothing(tiny_data, tmp_path):
    train, _ = tiny_data
    loader = TensorLoader(train, 64)
    model, opt = _setup("lenet")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=len(loader))
    ck = tmp_path / "oc.ckpt"
    fit(model, loader, optimizer=opt, scheduler=sched, epochs=1, progress=False, checkpoint=ck)
    fresh, fresh_opt = _setup("lenet", seed=1)
    longer = torch.optim.lr_scheduler.OneCycleLR(fresh_opt, max_lr=0.01, total_steps=3 * len(loader))
    before = [p.clone() for p in fresh.parameters()]
    with pytest.raises(CheckpointError, match="planned for 5 steps"):
        fit(fresh, loader, optimizer=fresh_opt, scheduler=longer, epochs=3, progress=False, checkpoint=ck, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(before, fresh.parameters(), strict=True)), "weights not loaded"
    assert fresh_opt.state == {} and fresh_opt.param_groups[0]["initial_lr"] == 0.01 / 25
