"""mnist_course.viz, the CLI, and the package's promise of no import side effects."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from mnist_course import viz
from mnist_course.__main__ import main
from mnist_course.train import History


@pytest.fixture
def history():
    h = History()
    for e in range(1, 3):
        for b in range(1, 6):
            h.batches.append([(e - 1) * 50 + b * 10, 1.0 / (e * b)])
        h.epochs.append(
            {
                "epoch": e,
                "train_loss": 0.5 / e,
                "train_accuracy": 0.8 + 0.05 * e,
                "test_loss": 0.4 / e,
                "test_accuracy": 0.85 + 0.05 * e,
                "examples_seen": 50 * e,
                "seconds": 1.0,
            }
        )
    return h


def figures(history):
    images = torch.randn(10, 1, 28, 28)
    labels = torch.arange(10)
    predicted = labels.clone()
    predicted[3] = 5
    return {
        "show_image": viz.show_image(images[0], "a digit"),
        "show_batch": viz.show_batch(images, mean=0.13, std=0.31, title="batch"),
        "show_labelled": viz.show_labelled(images, labels, predicted, ncols=5),
        "plot_history": viz.plot_history(history),
        "plot_confusion_matrix": viz.plot_confusion_matrix(torch.eye(10, dtype=torch.long) * 90 + 1),
        "plot_per_class_accuracy": viz.plot_per_class_accuracy(torch.linspace(0.95, 1.0, 10)),
        "plot_class_histogram": viz.plot_class_histogram(labels.repeat(3)),
    }


def test_every_plot_returns_a_white_figure_and_leaves_global_state_alone(history):
    rc_before = dict(matplotlib.rcParams)
    open_before = plt.get_fignums()
    figs = figures(history)
    assert plt.get_fignums() == open_before, "figures must be closed from pyplot (shown once, not leaked)"
    assert dict(matplotlib.rcParams) == rc_before
    for name, fig in figs.items():
        assert isinstance(fig, Figure), name
        assert to_hex(fig.get_facecolor()) == "#ffffff", name
        assert all(to_hex(ax.get_facecolor()) == "#ffffff" for ax in fig.axes), name
        fig.canvas.draw()


def test_labelled_grid_marks_mistakes_in_red(history):
    fig = figures(history)["show_labelled"]
    titles = {ax.get_title(): to_hex(ax.title.get_color()) for ax in fig.axes if ax.get_title()}
    assert titles["5 (3)"] == viz.MISTAKE_COLOR
    assert titles["4"] == viz.CORRECT_COLOR


def test_unnormalize_and_input_checks():
    x = torch.tensor([-0.4242, 2.8215])
    assert torch.allclose(viz.unnormalize(x, 0.1307, 0.3081), torch.tensor([0.0, 1.0]), atol=1e-3)
    with pytest.raises(ValueError, match="one grayscale image"):
        viz.show_image(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="N x C x H x W"):
        viz.show_batch(torch.zeros(28, 28))


def test_importing_the_package_has_no_side_effects(tmp_path):
    code = (
        "import matplotlib, torch, random, os\n"
        "rc = dict(matplotlib.rcParams); state = torch.get_rng_state(); r = random.getstate()\n"
        "import mnist_course, mnist_course.data, mnist_course.models, mnist_course.shapes, mnist_course.train\n"
        "import mnist_course.evaluate, mnist_course.viz, mnist_course.checkpoint, mnist_course.__main__\n"
        "assert dict(matplotlib.rcParams) == rc, 'rcParams changed'\n"
        "assert torch.equal(torch.get_rng_state(), state) and random.getstate() == r, 'RNG touched'\n"
        "assert not os.path.exists(os.environ['MNIST_COURSE_DATA']), 'data fetched at import'\n"
    )
    env = {**__import__("os").environ, "MNIST_COURSE_DATA": str(tmp_path / "nothing")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_cli_models_lists_all_seven(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, count in [
        ("cnn", "3,761,034"),
        ("pytorch-examples-net", "21,840"),
        ("lenet5", "61,706"),
        ("lenet ", "44,426"),
        ("convnet-bn", "29,034"),
        ("lenet5-1998", "61,706"),
        ("modern-cnn", "150,698"),
    ]:
        assert any(line.startswith(name) and count in line for line in out.splitlines()), name


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
    assert "planned for 1 epochs" in capsys.readouterr().err


def test_cli_fetch_reports_where_and_from_which_source(mnist_root, capsys):
    assert main(["fetch", "--root", str(mnist_root)]) == 0
    out = capsys.readouterr().out
    assert str(mnist_root) in out and out.count("verified  (already there)") == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "vgg"], "invalid choice"),
        (["train", "--model", "lenet", "--epochs", "0"], "expected a number >= 1"),
        (["train", "--model", "lenet", "--lr", "-1"], "expected a number > 0"),
        (["evaluate"], "--checkpoint"),
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
    assert "error: no checkpoint at" in err and "Traceback" not in err
    assert main(["train", "--model", "lenet", "--resume"]) == 1
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_cli_as_a_module_process(mnist_root):
    run = subprocess.run([sys.executable, "-m", "mnist_course", "models"], capture_output=True, text=True)
    assert run.returncode == 0 and "modern-cnn" in run.stdout
    json.dumps(run.stdout)


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
