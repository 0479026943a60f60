"""mnist_course.cli (``python -m mnist_course``): every subcommand, argument checks and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from test_models import EXPECTED

from mnist_course import bench as bench_module
from mnist_course import record as record_module
from mnist_course.bench import BenchResult, reference
from mnist_course.cli import COMMANDS, build_parser, main
from mnist_course.record import RecordResult
from mnist_course.results import from_dict


def models_table(out: str) -> dict[str, str]:
    """``{name: parameter count as printed}`` from the output of `models`."""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["model", "parameters", "source"]
    return {line.split()[0]: line.split()[1] for line in lines[1:]}


def test_cli_models_lists_all_seven(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert models_table(out) == {name: f"{count:,}" for name, (count, _) in EXPECTED.items()}


def test_cli_as_a_module_process(capsys):
    run = subprocess.run([sys.executable, "-m", "mnist_course", "models"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == ""
    assert main(["models"]) == 0
    assert run.stdout == capsys.readouterr().out, "`python -m mnist_course` is cli.main"
    assert models_table(run.stdout)["modern-cnn"] == "150,698"
    failed = subprocess.run([sys.executable, "-m", "mnist_course", "train"], capture_output=True, text=True)
    assert failed.returncode == 2 and "--model" in failed.stderr and failed.stdout == ""


def test_the_parser_has_one_subcommand_per_command():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert (
        list(sub.choices)
        == list(COMMANDS)
        == [
            "fetch",
            "models",
            "train",
            "evaluate",
            "predict",
            "export",
            "bench",
            "record",
            "ddp",
        ]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "vgg"], "invalid choice"),
        (["train", "--model", "lenet", "--epochs", "0"], "expected a number >= 1"),
        (["train", "--model", "lenet", "--epochs", "two"], "expected a whole number"),
        (["train", "--model", "lenet", "--lr", "-1"], "expected a number > 0"),
        (["train", "--model", "lenet", "--lr", "fast"], "expected a number, got 'fast'"),
        (["evaluate"], "--checkpoint"),
        (["record", "--epochs", "0"], "expected a number >= 1"),
        (["bench", "--record"], "unrecognized arguments: --record"),
        ([], "COMMAND"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 4
    err = capsys.readouterr().err
    assert "none.pt is missing; train with" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "lenet", "--resume"])
    assert exit_.value.code == 2 and "--resume needs --checkpoint" in capsys.readouterr().err


def test_cli_record_passes_its_options_and_writes_the_result(tmp_path, monkeypatch, capsys):
    calls = []
    stored = reference("record")

    def fake_record(epochs, **kwargs):
        calls.append((epochs, kwargs))
        kwargs["log"]("epoch 1/2: accuracy 99.00% (1 s so far)")
        return stored

    monkeypatch.setattr(record_module, "record", fake_record)
    out, ck = tmp_path / "record.json", tmp_path / "record.ckpt"
    assert main(["record", "--epochs", "2", "--out", str(out), "--checkpoint", str(ck)]) == 0
    ((epochs, kwargs),) = calls
    assert epochs == 2 and kwargs["checkpoint"] == str(ck) and kwargs["root"] is None and kwargs["device"] is None
    text = capsys.readouterr().out
    assert "epoch 1/2: accuracy 99.00%" in text
    assert f"final test accuracy {stored.test_accuracy:.2%}" in text and f"result: {out}" in text
    assert from_dict(RecordResult, json.loads(out.read_text())) == stored
    assert main(["record"]) == 0 and calls[-1][0] == 15, "15 epochs by default"


def test_cli_bench_prints_the_summary_and_writes_json(tmp_path, monkeypatch, capsys):
    stored = reference("bench-cpu")
    calls = []
    monkeypatch.setattr(bench_module, "measure", lambda **kwargs: calls.append(kwargs) or stored)
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--device", "cpu", "--out", str(out)]) == 0
    assert calls[0]["quick"] is True and calls[0]["device"] == "cpu" and calls[0]["root"] is None
    text = capsys.readouterr().out
    assert bench_module.summary(stored) in text and f"results: {out}" in text
    assert asdict(from_dict(BenchResult, json.loads(out.read_text()))) == asdict(stored)


@pytest.mark.slow
def test_cli_train_then_evaluate_then_resume(mnist_root, tmp_path, capsys):
    ck = tmp_path / "lenet.pt"
    args = [
        "train",
        "--model",
        "lenet",
        "--epochs",
        "1",
        "--limit",
        "4000",
        "--batch-size",
        "64",
        "--schedule",
        "constant",
        "--lr",
        "2e-3",
        "--root",
        str(mnist_root),
        "--checkpoint",
        str(ck),
        "--no-progress",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "device: CPU" in out or "device: CUDA" in out
    acc = float(out.split("final test accuracy: ")[1].split("%")[0])
    assert acc > 60, "far above the 10% of guessing"
    assert main(["evaluate", "--checkpoint", str(ck), "--root", str(mnist_root)]) == 0
    assert f"{acc:.2f}%" in capsys.readouterr().out
    assert main([*args[:4], "2", *args[5:], "--resume"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1:" in out and "epoch 2:" in out, "the resumed history keeps epoch 1"


@pytest.mark.slow
def test_cli_fetch_reports_where_and_from_which_source(mnist_root, capsys):
    assert main(["fetch", "--root", str(mnist_root)]) == 0
    out = capsys.readouterr().out
    assert str(mnist_root) in out and out.count("verified  (already there)") == 4


@pytest.mark.slow
def test_cli_predict_on_generated_sample_pngs(mnist_root, tmp_path, capsys):
    from mnist_course.sample_digits import make_samples

    root = tmp_path / "root"
    (root / "MNIST" / "raw").mkdir(parents=True)
    for f in (mnist_root / "MNIST" / "raw").iterdir():
        (root / "MNIST" / "raw" / f.name).symlink_to(f)
    pngs = []
    for sample in make_samples(1, seed=0)[:3]:
        path = tmp_path / f"digit_{sample.label}.png"
        sample.image.save(path)
        pngs.append(str(path))
    (tmp_path / "notes.png").write_text("not an image")

    # no --checkpoint: a LeNet-5 is trained once and cached in the data root
    assert main(["predict", *pngs, "--root", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()[-3:]
    assert [line.split(":")[0] for line in out] == pngs
    assert all(line.split(": ")[1][0].isdigit() and "then" in line for line in out)
    assert (root / "checkpoints" / "lenet5.ckpt").exists()

    ck = root / "checkpoints" / "lenet5.ckpt"
    assert main(["predict", pngs[0], str(tmp_path / "notes.png"), "--checkpoint", str(ck), "--root", str(root)]) == 6
    out = capsys.readouterr().out
    assert "notes.png: " in out and "not an image file" in out


def _train(root, checkpoint, *extra) -> int:
    """`train` of the unpadded LeNet on 500 images, quietly."""
    base = ["train", "--model", "lenet", "--limit", "500", "--root", str(root), "--no-progress"]
    return main([*base, "--checkpoint", str(checkpoint), *extra])


def _one_line(err: str) -> str:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.slow
def test_cli_resume_keeps_the_saved_settings_and_says_when_a_run_is_finished(mnist_root, tmp_path, capsys):
    ck = tmp_path / "run.ckpt"
    assert _train(mnist_root, ck, "--epochs", "1", "--lr", "0.002", "--schedule", "constant") == 0
    capsys.readouterr()
    # the repro: a new --lr used to be printed in the header and ignored
    assert _train(mnist_root, ck, "--resume", "--lr", "0.01") == 4
    err = _one_line(capsys.readouterr().err)
    assert "was trained with --lr 0.002, and a resumed run keeps its settings" in err
    assert f"`python -m mnist_course train --model lenet --checkpoint {ck} --root {mnist_root} --resume`" in err
    # settings left out come from the checkpoint, and the header shows what really trains
    assert _train(mnist_root, ck, "--resume", "--epochs", "2") == 0
    out = capsys.readouterr().out
    assert "--lr 0.002" in out and "--schedule constant" in out and "resuming after epoch 1" in out
    assert "epoch 1:" in out and "epoch 2:" in out
    assert _train(mnist_root, ck, "--resume", "--epochs", "2") == 0
    out = capsys.readouterr().out
    assert "has finished its 2 epochs (test accuracy" in out and "nothing to train" in out and "epoch 3" not in out


@pytest.mark.slow
def test_cli_resume_refuses_another_plan_optimizer_or_schedule(mnist_root, tmp_path, capsys):
    ck = tmp_path / "oc.ckpt"
    assert _train(mnist_root, ck, "--epochs", "1") == 0  # one-cycle Adam
    capsys.readouterr()
    # the repro: --schedule constant, as the old message advised, trained at lr 3e-8
    for change in (["--schedule", "constant"], ["--optimizer", "sgd"], ["--epochs", "3"]):
        assert _train(mnist_root, ck, "--resume", *change) == 4
        err = _one_line(capsys.readouterr().err)
        assert f"was trained with {change[0]} " in err and "start a new run with another --checkpoint" in err
    assert _train(mnist_root, ck, "--resume") == 0
    assert "has finished its 1 epoch" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_never_overwrites_a_file_without_overwrite(mnist_root, tmp_path, capsys):
    from mnist_course.checkpoint import read_checkpoint

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 my photo")
    assert _train(mnist_root, photo, "--epochs", "1") == 3
    err = _one_line(capsys.readouterr().err)
    assert "photo.jpg already exists: --resume continues that run, --overwrite replaces it" in err
    assert photo.read_bytes() == b"\xff\xd8 my photo"
    assert _train(mnist_root, photo, "--epochs", "1", "--overwrite") == 0
    assert read_checkpoint(photo)["epoch"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_cli_checkpoint_path_is_checked_before_training(mnist_root, tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    path = tmp_path if where == "folder" else tmp_path / "file" / "run.ckpt"
    assert _train(mnist_root, path, "--epochs", "1") == 3
    captured = capsys.readouterr()
    assert captured.out == "", "refused before loading data or training"
    assert "is a folder" in _one_line(captured.err) or "cannot write the checkpoint" in captured.err


@pytest.mark.slow
def test_cli_a_diverging_run_stops_with_one_line(mnist_root, tmp_path, capsys):
    """The issue's repro: Adam at --lr 10 reached loss 7e30 and 10% accuracy with exit status 0."""
    args = ["--epochs", "3", "--lr", "10", "--schedule", "constant"]
    assert _train(mnist_root, tmp_path / "boom.ckpt", *args) == 5
    assert "training diverged: the loss became" in _one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_cli_bad_checkpoints_get_one_line_each(mnist_root, tmp_path, capsys):
    ck = tmp_path / "good.ckpt"
    assert _train(mnist_root, ck, "--epochs", "1") == 0
    data = bytearray(ck.read_bytes())
    for i in range(80, 112):
        data[i] ^= 0xFF
    files = {"empty.ckpt": b"", "notes.ckpt": b"not a checkpoint at all", "flipped.ckpt": bytes(data)}
    reasons = {"empty.ckpt": "is empty (0 bytes)", "notes.ckpt": "is not a checkpoint", "flipped.ckpt": "is damaged"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        assert main(["evaluate", "--checkpoint", str(tmp_path / name), "--root", str(mnist_root)]) == 4
        err = _one_line(capsys.readouterr().err)
        assert reasons[name] in err and "weights_only=False" not in err and "KeyError" not in err


def test_cli_data_root_problems_are_one_line(tmp_path, capsys):
    (tmp_path / "root").write_text("a file")
    assert main(["fetch", "--root", str(tmp_path / "root")]) == 3
    assert "is a file, not a folder" in _one_line(capsys.readouterr().err)


def test_cli_output_files_are_checked_before_the_work(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(bench_module, "measure", lambda **kwargs: calls.append(kwargs) or reference("bench-cpu"))
    monkeypatch.setattr(record_module, "record", lambda *a, **k: calls.append(k) or reference("record"))
    (tmp_path / "file").write_text("x")
    (tmp_path / "old.json").write_text("{}")
    assert main(["bench", "--quick", "--out", str(tmp_path / "file" / "bench.json")]) == 3
    assert "cannot write the results" in _one_line(capsys.readouterr().err)
    assert main(["bench", "--quick", "--out", str(tmp_path / "old.json")]) == 3
    assert "pass --overwrite to replace it" in _one_line(capsys.readouterr().err)
    assert main(["record", "--checkpoint", str(tmp_path / "old.json")]) == 3
    assert calls == [] and (tmp_path / "old.json").read_text() == "{}", "refused before any work, nothing touched"
    assert main(["bench", "--quick", "--out", str(tmp_path / "old.json"), "--overwrite"]) == 0
    assert len(calls) == 1 and json.loads((tmp_path / "old.json").read_text())["quick"] is False


def test_cli_an_interrupted_command_is_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, "models", interrupted)
    monkeypatch.setitem(COMMANDS, "train", interrupted)
    assert main(["models"]) == 130
    assert _one_line(capsys.readouterr().err).endswith("error: interrupted\n")
    assert main(["train", "--model", "lenet", "--checkpoint", "run.ckpt"]) == 130
    assert "interrupted; run.ckpt holds the last complete epoch (continue with --resume)" in capsys.readouterr().err


def test_cli_bench_quick_says_what_it_can_and_cannot_show(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "they check that everything runs; their ratios are noise on a busy machine" in text
    assert "under 2 minutes" not in text


@pytest.mark.slow
def test_cli_refuses_to_resume_a_checkpoint_without_train_settings(mnist_root, tmp_path, capsys):
    """A checkpoint written by fit() in a notebook (or by 0.1) does not say how it was trained."""
    from mnist_course.data import TensorLoader, load_tensors
    from mnist_course.models import create_model
    from mnist_course.train import fit

    model = create_model("lenet")
    ck = tmp_path / "notebook.ckpt"
    loader = TensorLoader(load_tensors(True, mnist_root, limit=256), 64)
    fit(model, loader, optimizer=torch.optim.Adam(model.parameters()), epochs=1, progress=False, checkpoint=ck)
    assert _train(mnist_root, ck, "--resume", "--epochs", "2") == 4
    assert "stores no `train` settings" in _one_line(capsys.readouterr().err)
