"""mnist_course.viz: every plot returns a white figure, leaves global state alone, and checks its input."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from mnist_course import viz
from mnist_course.history import EpochRecord, History


@pytest.fixture
def history():
    h = History()
    for e in range(1, 3):
        for b in range(1, 6):
            h.batches.append([(e - 1) * 50 + b * 10, 1.0 / (e * b)])
        h.epochs.append(
            EpochRecord(
                epoch=e,
                train_loss=0.5 / e,
                train_accuracy=0.8 + 0.05 * e,
                eval_loss=0.4 / e,
                eval_accuracy=0.85 + 0.05 * e,
                examples_seen=50 * e,
                seconds=1.0,
            )
        )
    return h


def figures(history):
    images = torch.randn(10, 1, 28, 28)
    labels = torch.arange(10)
    predicted = labels.clone()
    predicted[3] = 5
    return {
        "show_labelled": viz.show_labelled(images, labels, predicted, nrow=5),
        "plot_history": viz.plot_history(history),
        "plot_confusion_matrix": viz.plot_confusion_matrix(torch.eye(10, dtype=torch.long) * 90 + 1),
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


def test_labelled_grid_has_nrow_digits_per_row():
    fig = viz.show_labelled(torch.zeros(7, 1, 28, 28), torch.arange(7), nrow=3)
    assert len(fig.axes) == 9 and sum(bool(ax.get_title()) for ax in fig.axes) == 7
    assert fig.axes[0].get_gridspec().ncols == 3


def test_history_plot_labels_the_evaluation_data(history):
    def legends(fig):
        return [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]

    assert "validation loss" in legends(viz.plot_history(history)) and "validation" in legends(
        viz.plot_history(history)
    )
    test = legends(viz.plot_history(history, eval_label="test"))
    assert "test loss" in test and "test" in test and "validation" not in test
    loss_ax = viz.plot_history(history).axes[0]
    assert [tuple(p) for p in loss_ax.collections[0].get_offsets()] == [(50, 0.4), (100, 0.2)]


def test_history_plot_without_evaluation_data():
    h = History(batches=[[10, 1.0], [20, 0.5]], epochs=[EpochRecord(1, 0.75, 0.8, None, None, 20, 1.0)])
    fig = viz.plot_history(h)
    fig.canvas.draw()
    assert len(fig.axes[0].collections[0].get_offsets()) == 0, "no evaluation points"


def test_unnormalize_and_empty_batches():
    x = torch.tensor([-0.4242, 2.8215])
    assert torch.allclose(viz.unnormalize(x, 0.1307, 0.3081), torch.tensor([0.0, 1.0]), atol=1e-3)
    with pytest.raises(ValueError, match="got no images"):
        viz.show_labelled(torch.zeros(0, 1, 28, 28), torch.zeros(0))
