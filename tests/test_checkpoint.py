"""mnist_course.checkpoint: atomic saves, loading anywhere, clear errors, the schedule check, RNG state."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.serialization
from torch import nn

from mnist_course import checkpoint as ckpt
from mnist_course.checkpoint import Checkpoint, check_schedule, load_checkpoint, read_checkpoint, save_checkpoint
from mnist_course.data import TensorLoader
from mnist_course.device import seed_everything
from mnist_course.errors import CheckpointError
from mnist_course.history import EpochRecord, History
from mnist_course.models import create_model
from mnist_course.train import fit


def _setup(name="pytorch-examples-net", seed=0, lr=3e-3):
    seed_everything(seed)
    model = create_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return model, optimizer


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
    with pytest.raises(ValueError, match="saved without an optimizer state"):
        load_checkpoint(tmp_path / "custom.pt", Custom(3, 2), torch.optim.SGD(Custom(3, 2).parameters(), lr=0.1))
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a checkpoint: torch.save writes a zip archive"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a mnist_course checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="missing; train with `--checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        read_checkpoint(tmp_path)


def test_damaged_checkpoints_get_a_safe_one_line_reason(tmp_path):
    model, opt = _setup("lenet")
    good = save_checkpoint(tmp_path / "good.pt", model, opt)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\)"):
        read_checkpoint(tmp_path / "empty.pt")
    data = bytearray(good.read_bytes())
    for i in range(80, 112):  # flip bytes inside the pickled data (the archive's first member)
        data[i] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is damaged and cannot be loaded safely") as err:
        read_checkpoint(tmp_path / "flipped.pt")
    for unsafe in ("weights_only", "Re-running", "\n"):
        assert unsafe not in str(err.value), "torch's unsafe advice is not passed on"


def test_an_optimizer_state_goes_only_into_the_same_kind_of_optimizer(tmp_path):
    model = create_model("lenet")
    path = save_checkpoint(tmp_path / "sgd.pt", model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    fresh = create_model("lenet")
    with pytest.raises(CheckpointError, match="holds the state of a SGD optimizer, which does not fit this Adam"):
        load_checkpoint(path, fresh, torch.optim.Adam(fresh.parameters()))


def test_checkpoint_keeps_the_history_typed_and_the_extra_data(tmp_path):
    model, opt = _setup("lenet")
    history = History([[8, 2.3]], [EpochRecord(1, 2.3, 0.1, 2.2, 0.12, 8, 0.5)])
    path = save_checkpoint(tmp_path / "h.pt", model, opt, epoch=1, history=history, extra={"note": "hi"})
    raw = read_checkpoint(path)
    assert raw["format"] == ckpt.FORMAT and raw["model_name"] == "lenet" and raw["epoch"] == 1
    info = load_checkpoint(path, create_model("lenet"))
    assert isinstance(info, Checkpoint) and info.path == path and info.extra == {"note": "hi"}
    assert isinstance(info.history, History) and info.history == history
    assert isinstance(info.history.last, EpochRecord)
    assert load_checkpoint(save_checkpoint(tmp_path / "none.pt", model), create_model("lenet")).history is None


def test_optimizer_owns_detects_an_optimizer_built_on_another_model():
    old, new = create_model("lenet"), create_model("lenet")
    assert ckpt.optimizer_owns(torch.optim.SGD(new.parameters(), lr=0.1), new)
    assert ckpt.optimizer_owns(torch.optim.SGD(list(new.parameters())[:2], lr=0.1), new)  # a part: still its own
    assert not ckpt.optimizer_owns(torch.optim.SGD(old.parameters(), lr=0.1), new)


def test_rng_state_round_trip():
    state = ckpt.rng_state()
    a = torch.rand(2), random.random(), np.random.rand()
    ckpt.set_rng_state(state)
    b = torch.rand(2), random.random(), np.random.rand()
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def _one_cycle(opt, total_steps):
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=total_steps)


def test_check_schedule_refuses_a_one_cycle_of_another_length():
    model, opt = _setup("lenet")
    saved = _one_cycle(opt, 10).state_dict()
    check_schedule("ck.pt", saved, _one_cycle(opt, 10))  # the same plan: fine
    check_schedule("ck.pt", None, _one_cycle(opt, 30))  # saved without a scheduler
    check_schedule("ck.pt", saved, torch.optim.lr_scheduler.StepLR(opt, 1))  # no plan length to compare
    with pytest.raises(ValueError, match=r"ck\.pt follows a learning-rate schedule planned for 10 steps, but this"):
        check_schedule("ck.pt", saved, _one_cycle(opt, 30))
    with pytest.raises(ValueError, match=r"planned for 10 steps \(2 epochs of this data\), but this one plans 30"):
        check_schedule("ck.pt", saved, _one_cycle(opt, 30), loader=[None] * 5)


def test_fit_resume_refuses_a_one_cycle_schedule_of_another_length(tiny_data, tmp_path):
    train, _ = tiny_data
    ck = tmp_path / "oc.pt"
    loader = TensorLoader(train, 64)
    model, opt = _setup("lenet")
    fit(model, loader, optimizer=opt, epochs=1, scheduler=_one_cycle(opt, len(loader)), checkpoint=ck, progress=False)
    model, opt = _setup("lenet")
    with pytest.raises(ValueError, match=r"planned for 5 steps \(1 epoch of this data\), but this one plans 15"):
        fit(
            model,
            loader,
            optimizer=opt,
            epochs=3,
            scheduler=_one_cycle(opt, 3 * len(loader)),
            checkpoint=ck,
            resume=True,
            progress=False,
        )
    model, opt = _setup("lenet")
    same = _one_cycle(opt, len(loader))
    history = fit(model, loader, optimizer=opt, epochs=1, scheduler=same, checkpoint=ck, resume=True, progress=False)
    assert len(history.epochs) == 1 and same.last_epoch == len(loader), "the same plan resumes"


def test_a_checkpoint_of_version_0_1_is_still_matched_to_its_optimizer(tmp_path):
    """0.1 checkpoints carry no optimizer name: its kind is read from the state (momentum buffers are SGD's)."""
    model, data = create_model("lenet"), torch.zeros(4, 1, 28, 28)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(data).sum().backward()
    sgd.step()
    state = torch.load(save_checkpoint(tmp_path / "new.pt", model, sgd), weights_only=True)
    del state["optimizer_name"]
    torch.save(state, tmp_path / "old.pt")
    fresh = create_model("lenet")
    with pytest.raises(CheckpointError, match="holds the state of a SGD optimizer, which does not fit this Adam"):
        load_checkpoint(tmp_path / "old.pt", fresh, torch.optim.Adam(fresh.parameters()))


def test_resuming_a_scheduled_run_without_a_scheduler_is_refused(tmp_path):
    model, opt = _setup("lenet")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10)
    path = save_checkpoint(tmp_path / "oc.pt", model, opt, sched)
    fresh = create_model("lenet")
    with pytest.raises(CheckpointError, match="was saved with a learning-rate scheduler: pass one of the same kind"):
        load_checkpoint(path, fresh, torch.optim.Adam(fresh.parameters()))
