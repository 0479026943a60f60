"""mnist_course.export and `python -m mnist_course export`: one ONNX file, pixels in, probabilities out."""

from __future__ import annotations

import builtins

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mnist_course.checkpoint import save_checkpoint
from mnist_course.cli import main
from mnist_course.errors import InputError
from mnist_course.export import Deployable, OnnxCheck, check_onnx, export_onnx
from mnist_course.models import create_model


def test_export_gives_pytorchs_probabilities_for_any_batch_size(tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet5").train()  # exported in eval() mode, left in train() mode
    path = export_onnx(model, tmp_path / "m.onnx", mean=0.13, std=0.31)
    assert model.training and next(model.parameters()).device.type == "cpu"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    pixels = torch.rand(7, 1, 28, 28)
    for batch in (1, 7):
        (probs,) = session.run(None, {"pixels": pixels[:batch].numpy()})
        with torch.no_grad():
            expected = Deployable(model, 0.13, 0.31).eval()(pixels[:batch]).numpy()
        assert probs.shape == (batch, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
        assert np.abs(probs - expected).max() < 1e-5
    check = check_onnx(path, model, pixels, mean=0.13, std=0.31)
    assert (check.images, check.same_predictions) == (7, 7) and check.max_difference < 1e-5
    assert "7 of 7 images get the same digit" in str(check)


def test_a_missing_onnx_package_is_one_line_saying_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_onnxscript(name, *args, **kwargs):
        if name == "onnxscript":
            raise ModuleNotFoundError("No module named 'onnxscript'", name="onnxscript")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxscript)
    with pytest.raises(InputError, match=r'onnxscript is missing\): pip install "mnist_course\[onnx\]"'):
        export_onnx(create_model("lenet5"), tmp_path / "m.onnx", mean=0.13, std=0.31)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_cli_export_checks_the_file_on_the_test_set_and_keeps_existing_files(mnist_root, tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "m.ckpt", create_model("lenet"), epoch=3)
    out = tmp_path / "shipped" / "m.onnx"
    argv = ["export", "--checkpoint", str(checkpoint), "--out", str(out), "--root", str(mnist_root)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"lenet after 3 epochs -> {out}" in printed
    assert "10,000 of 10,000 images get the same digit" in printed
    before = out.read_bytes()
    assert main(argv) == 3
    assert "already exists: pass --overwrite to replace it" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main([*argv, "--overwrite"]) == 0


def test_a_check_agrees_only_with_every_prediction_the_same_and_tiny_differences():
    assert OnnxCheck(10, 1e-6, 10).agrees
    assert not OnnxCheck(10, 1e-6, 9).agrees
    assert not OnnxCheck(10, 1e-3, 10).agrees


@pytest.mark.slow
def test_cli_export_fails_when_the_file_disagrees_and_keeps_it(mnist_root, tmp_path, monkeypatch, capsys):
    import mnist_course.export

    monkeypatch.setattr(mnist_course.export, "check_onnx", lambda *args, **kwargs: OnnxCheck(10_000, 0.2, 9_990))
    checkpoint = save_checkpoint(tmp_path / "m.ckpt", create_model("lenet"), epoch=1)
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--root", str(mnist_root)]) == 1
    err = capsys.readouterr().err
    assert "does not compute what the checkpoint does" in err and "kept for inspection" in err and out.exists()
