"""mnist_course.data: the two data paths, TensorData, TensorLoader, as_batches and the validation split."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from mnist_course.data import (
    VALIDATION_SIZE,
    TensorData,
    TensorLoader,
    as_batches,
    load_tensors,
    mnist_datasets,
    normalization_stats,
    train_val_split,
)
from mnist_course.errors import InputError


def numbered(n: int) -> TensorData:
    """``n`` examples whose label is their index, so a split can be checked example by example."""
    return TensorData(torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1), torch.arange(n))


# ---------------------------------------------------------------------------------------------
# The real dataset (fetched once per run by the mnist_root fixture)
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_normalization_stats_are_computed_from_the_data(mnist_root):
    mean, std = normalization_stats(mnist_root)
    assert round(mean, 4) == 0.1307 and round(std, 4) == 0.3081


@pytest.mark.slow
def test_tensor_path_equals_dataloader_path(mnist_root):
    train_ds, test_ds = mnist_datasets(mnist_root)
    tensors = load_tensors(False, mnist_root, limit=50)
    assert tensors.images.shape == (50, 1, 28, 28) and tensors.labels.dtype == torch.int64
    for i in (0, 7, 49):
        x, y = test_ds[i]
        assert torch.allclose(tensors.images[i], x, atol=1e-6) and tensors.labels[i] == y
    assert abs(load_tensors(True, mnist_root).images.mean().item()) < 1e-4


@pytest.mark.slow
def test_load_tensors_rejects_bad_limit(mnist_root):
    with pytest.raises(ValueError, match="limit"):
        load_tensors(False, mnist_root, limit=0)


@pytest.mark.slow
def test_train_val_split_of_the_real_training_set(mnist_root):
    train_ds, _ = mnist_datasets(mnist_root)
    tensors = load_tensors(True, mnist_root)
    (t_train, t_val), (d_train, d_val) = train_val_split(tensors), train_val_split(train_ds)
    assert (len(t_train), len(t_val)) == (len(d_train), len(d_val)) == (55_000, VALIDATION_SIZE)
    assert torch.equal(t_val.labels, train_ds.targets[d_val.indices]), "both paths hold out the same images"


# ---------------------------------------------------------------------------------------------
# In-memory data
# ---------------------------------------------------------------------------------------------


def test_tensor_data_slices_and_indexes_to_tensor_data():
    data = numbered(20)
    first = data[:10]
    assert isinstance(first, TensorData) and len(first) == 10 and first.labels.tolist() == list(range(10))
    picked = data[torch.tensor([3, 1, 4])]
    assert isinstance(picked, TensorData) and picked.labels.tolist() == [3, 1, 4]
    assert picked.images.flatten().tolist() == [3.0, 1.0, 4.0]
    assert data[5].labels.tolist() == [5] and data[5].images.shape == (1, 1, 1, 1)
    assert data[-1].labels.tolist() == [19], "the last example, not an empty slice"
    assert data[torch.arange(20) % 2 == 0].labels.tolist() == list(range(0, 20, 2))
    assert data.to("cpu").labels.device.type == "cpu"


def test_tensor_loader_batches_shuffle_and_state(tiny_data):
    train, _ = tiny_data
    loader = TensorLoader(train, 64, shuffle=True, seed=3)
    assert len(loader) == 5 and len(TensorLoader(train, 100, drop_last=True)) == 3
    assert len(TensorLoader(train, 100)) == 4
    first = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == sorted(train.labels.tolist())
    state = loader.state_dict()
    second = torch.cat([y for _, y in loader])
    assert not torch.equal(first, second), "each epoch draws a new order"
    replay = TensorLoader(train, 64, shuffle=True, seed=99)
    replay.load_state_dict(state)
    assert torch.equal(torch.cat([y for _, y in replay]), second)
    plain = TensorLoader(train, 64)
    assert torch.equal(next(iter(plain))[1], train.labels[:64])
    assert plain.dataset is train
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(train, 0)


def test_as_batches_cuts_data_and_passes_loaders_through(tiny_data):
    _, test = tiny_data
    batches = as_batches(test, batch_size=30)
    assert isinstance(batches, TensorLoader) and [len(y) for _, y in batches] == [30, 30, 30, 10]
    assert torch.equal(torch.cat([y for _, y in batches]), test.labels), "in order"
    dataset = TensorDataset(test.images, test.labels)
    loader = as_batches(dataset, batch_size=40)
    assert isinstance(loader, DataLoader) and [len(y) for _, y in loader] == [40, 40, 20]
    assert len(list(as_batches(test))) == 1, "1000 per batch by default"
    given = [(test.images[:5], test.labels[:5])]
    assert as_batches(given) is given
    tensor_loader = TensorLoader(test, 7)
    assert as_batches(tensor_loader) is tensor_loader


# ---------------------------------------------------------------------------------------------
# train_val_split
# ---------------------------------------------------------------------------------------------


def test_train_val_split_sizes_disjoint_and_complete():
    data = numbered(100)
    train, val = train_val_split(data, val_size=20)
    assert isinstance(train, TensorData) and isinstance(val, TensorData)
    assert (len(train), len(val)) == (80, 20)
    train_ids, val_ids = set(train.labels.tolist()), set(val.labels.tolist())
    assert not train_ids & val_ids, "no example in both"
    assert train_ids | val_ids == set(range(100)), "every example in one of them"
    assert torch.equal(train.images.flatten().long(), train.labels), "images stay with their labels"
    assert val.labels.tolist() != list(range(20)), "a random choice, not the first examples"


def test_train_val_split_is_the_same_every_time_and_follows_the_seed():
    data = numbered(100)
    a_train, a_val = train_val_split(data, val_size=20)
    torch.manual_seed(123)  # the global RNG does not matter
    b_train, b_val = train_val_split(data, val_size=20)
    assert torch.equal(a_val.labels, b_val.labels) and torch.equal(a_train.labels, b_train.labels)
    _, other = train_val_split(data, val_size=20, seed=1)
    assert not torch.equal(other.labels, a_val.labels)


def test_train_val_split_holds_out_5000_by_default():
    train, val = train_val_split(numbered(6000))
    assert VALIDATION_SIZE == 5000 and (len(train), len(val)) == (1000, 5000)


def test_train_val_split_of_a_dataset_gives_subsets_of_the_same_examples():
    data = numbered(50)
    dataset = TensorDataset(data.images, data.labels)
    train, val = train_val_split(dataset, val_size=10)
    assert isinstance(train, Subset) and isinstance(val, Subset) and train.dataset is dataset
    assert (len(train), len(val)) == (40, 10)
    assert not set(train.indices) & set(val.indices) and set(train.indices) | set(val.indices) == set(range(50))
    _, tensor_val = train_val_split(data, val_size=10)
    assert [int(val[i][1]) for i in range(10)] == tensor_val.labels.tolist(), "the same examples as for TensorData"


@pytest.mark.parametrize("val_size", [0, -1, 50, 51])
def test_train_val_split_rejects_a_bad_size(val_size):
    with pytest.raises(ValueError, match="val_size must be between 1 and 49"):
        train_val_split(numbered(50), val_size=val_size)


def test_labels_outside_the_classes_are_refused_by_training_and_evaluation():
    """The one label rule (classes 0..9 for ten outputs) in fit, evaluate and confusion_matrix alike."""
    from mnist_course.evaluate import evaluate
    from mnist_course.models import create_model
    from mnist_course.train import fit

    images = torch.zeros(3, 1, 28, 28)
    for labels in (torch.tensor([0, 10, 1]), torch.tensor([-1, 0, 1])):
        model = create_model("lenet")
        data = TensorData(images, labels)
        with pytest.raises(InputError, match=r"labels must be classes 0\.\.9"):
            fit(
                model,
                TensorLoader(data, 3),
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                epochs=1,
                progress=False,
            )
        with pytest.raises(InputError, match=r"labels must be classes 0\.\.9"):
            evaluate(model, data)
    with pytest.raises(InputError, match="one label per image"):
        TensorData(images, torch.tensor([0, 1]))
