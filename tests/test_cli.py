"""mnist_course.cli (``python -m mnist_course``): every subcommand, argument checks and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
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
    assert list(sub.choices) == list(COMMANDS) == ["fetch", "models", "train", "evaluate", "predict", "bench", "record"]


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
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert "error: no checkpoint at" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--model", "lenet", "--resume"]) == 1
    assert "--resume needs --checkpoint" in capsys.readouterr().err


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
def test_cli_resume_refuses_a_changed_one_cycle_plan(mnist_root, tmp_path, capsys):
    ck = tmp_path / "oc.pt"
    base = [
        "train",
        "--model",
        "lenet",
        "--limit",
        "500",
        "--root",
        str(mnist_root),
        "--checkpoint",
        str(ck),
        "--no-progress",
    ]
    assert main([*base, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--epochs", "3", "--resume"]) == 1
    err = capsys.readouterr().err
    assert "planned for 4 steps (1 epoch of this data), but this one plans 12" in err
    assert "Traceback" not in err


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
    assert main(["predict", pngs[0], str(tmp_path / "notes.png"), "--checkpoint", str(ck), "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "notes.png: " in out and "not an image file" in out
