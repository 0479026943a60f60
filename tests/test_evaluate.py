"""mnist_course.evaluate: loss and accuracy, predictions, the confusion matrix; devices and modes."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mnist_course.data import TensorData
from mnist_course.evaluate import (
    Evaluation,
    confusion_matrix,
    evaluate,
    predict,
)
from mnist_course.models import create_model


def test_evaluation_functions():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2, 2, 1, 1, 2])
    cm = confusion_matrix(predicted, labels, 3)
    assert cm.tolist() == [[1, 1, 0], [1, 2, 0], [0, 2, 3]]
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(predicted[:3], labels)


@pytest.mark.parametrize("bad", [10, -1])
@pytest.mark.parametrize("where", ["labels", "predicted"])
def test_confusion_matrix_rejects_classes_outside_the_range(bad, where):
    good = torch.tensor([0, 3, 9, 5])
    broken = torch.tensor([0, 3, bad, 5])
    labels, predicted = (broken, good) if where == "labels" else (good, broken)
    with pytest.raises(ValueError, match=rf"{where} must be classes 0\.\.9"):
        confusion_matrix(predicted, labels)
    assert confusion_matrix(good, good).trace() == 4
    assert confusion_matrix(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long)).sum() == 0


def test_evaluate_and_predict_restore_mode_and_agree(tiny_data):
    _, test = tiny_data
    model = create_model("pytorch-examples-net").train()
    before = copy.deepcopy(model.state_dict())
    result = evaluate(model, test)
    preds = predict(model, test)
    assert model.training
    assert isinstance(result, Evaluation) and f"{result.correct}/100" in str(result)
    assert result.total == 100 and result.accuracy == pytest.approx(preds.accuracy)
    assert torch.allclose(preds.probabilities.sum(1), torch.ones(100), atol=1e-5)
    assert len(preds.mistakes) == 100 - result.correct
    cm = confusion_matrix(preds.predicted, preds.labels)
    for true, guess in [(t, g) for t in range(10) for g in range(10) if cm[t, g] and t != g][:3]:
        idx = preds.where(true, guess)
        assert len(idx) == cm[true, guess]
        assert (preds.labels[idx] == true).all() and (preds.predicted[idx] == guess).all()
    assert all(torch.equal(a, b) for a, b in zip(before.values(), model.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="no examples"):
        evaluate(model, [])
    with pytest.raises(ValueError, match="no examples"):
        predict(model, [])


def test_evaluate_uses_the_given_loss(tiny_data):
    _, test = tiny_data
    model = create_model("lenet")
    loss = evaluate(model, test, loss_fn=lambda out, y: torch.tensor(2.5)).loss
    assert loss == pytest.approx(2.5)
    assert evaluate(model, test).loss == pytest.approx(
        nn.functional.cross_entropy(model.eval()(test.images), test.labels).item(), rel=1e-5
    )


class Exploding(nn.Module):
    """A small network with dropout whose forward raises once ``fail`` is set."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(784, 10))
        self.fail = False

    def forward(self, x):
        if self.fail:
            raise RuntimeError("forward exploded")
        return self.body(x)


MEASURES = {"evaluate": evaluate, "predict": predict}


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
@pytest.mark.parametrize("name", list(MEASURES))
def test_measures_leave_the_mode_as_they_found_it(tiny_data, name, start):
    _, test = tiny_data
    model = Exploding().train(start)
    MEASURES[name](model, test)
    assert {m.training for m in model.modules()} == {start}


@pytest.mark.parametrize("start", [True, False], ids=["from-train", "from-eval"])
@pytest.mark.parametrize("name", list(MEASURES))
def test_measures_leave_the_mode_as_they_found_it_when_they_raise(tiny_data, name, start):
    _, test = tiny_data
    model = Exploding().train(start)
    model.fail = True
    with pytest.raises(RuntimeError, match="forward exploded"):
        MEASURES[name](model, test)
    assert {m.training for m in model.modules()} == {start}


def test_predictions_come_back_on_the_cpu(tiny_data):
    _, test = tiny_data
    preds = predict(create_model("lenet"), TensorData(test.images[:7], test.labels[:7]))
    assert preds.labels.device.type == preds.predicted.device.type == preds.probabilities.device.type == "cpu"
    assert preds.probabilities.shape == (7, 10) and torch.equal(preds.predicted, preds.probabilities.argmax(1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", list(MEASURES))
def test_measures_run_on_the_models_device(tiny_data, name):
    _, test = tiny_data  # on the CPU
    model = create_model("lenet").cuda()
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].device.type))
    MEASURES[name](model, test)
    assert seen and set(seen) == {"cuda"}
