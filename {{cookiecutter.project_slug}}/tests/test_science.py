"""The science code on its own: data modules and models, without the kit."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.data import SyntheticClassification
from {{ cookiecutter.package_name }}.models import MLP


def test_synthetic_data_splits_and_batches():
    data = SyntheticClassification(n_samples=200, val_fraction=0.2, test_fraction=0.1, batch_size=16)
    sizes = [len(data.train_set), len(data.val_set), len(data.test_set)]
    assert sum(sizes) == 200 and sizes[1] == 40 and sizes[2] == 20
    x, y = next(iter(data.train_loader()))
    assert x.shape == (16, data.num_features) and int(y.max()) < data.num_classes


def test_synthetic_data_is_the_same_for_the_same_seed():
    kwargs = {"n_samples": 64, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8}
    first, second = SyntheticClassification(**kwargs), SyntheticClassification(**kwargs)
    assert torch.equal(first.train_set.tensors[0], second.train_set.tensors[0])


@pytest.mark.parametrize("hidden", [(), (8,), (16, 8)])
def test_mlp_maps_features_to_class_logits(hidden):
    model = MLP(in_features=5, num_classes=3, hidden_sizes=hidden, dropout=0.1)
    assert model(torch.randn(4, 5)).shape == (4, 3)
