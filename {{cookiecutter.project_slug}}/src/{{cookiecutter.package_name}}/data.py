"""Data modules: each builds train/val/test loaders from data that needs no download."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from runkit.errors import UserError
from runkit.repro.seed import worker_init_fn


class DataModule:
    """Splits (features, labels) into train/val/test and serves loaders.

    The training loader shuffles with its own generator (seeded from the run's seed), whose state goes into
    every checkpoint so that a resumed run sees the same batches as an uninterrupted one.

    Under torchrun (`world_size > 1`) each rank gets its part: the training loader draws through a
    DistributedSampler (one order per epoch from the run's seed, the same on every rank, split between them;
    the loop calls its `set_epoch`), and the evaluation loaders each get every `world_size`-th sample, so that
    sums over ranks count each sample exactly once.
    """

    num_features: int
    num_classes: int

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        val_fraction: float,
        test_fraction: float,
        batch_size: int,
        num_workers: int = 0,
        split_seed: int = 0,
    ) -> None:
        if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
            raise UserError(
                f"val_fraction + test_fraction must be below 1 (got {val_fraction} + {test_fraction})"
            )
        if batch_size < 1:
            raise UserError(f"batch_size must be a positive integer, not {batch_size}")
        self.num_features, self.num_classes = features.shape[1], int(labels.max()) + 1
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(split_seed))
        n_val, n_test = int(len(order) * val_fraction), int(len(order) * test_fraction)
        val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
        self.train_set = TensorDataset(features[train], labels[train])
        self.val_set = TensorDataset(features[val], labels[val])
        self.test_set = TensorDataset(features[test], labels[test])
        self.batch_size, self.num_workers = batch_size, num_workers
        self.seed = torch.initial_seed() % 2**63  # the run's seed: every rank builds the data module from it
        self.generator = torch.Generator().manual_seed(self.seed)

    def _loader(
        self, dataset: Dataset, shuffle: bool, sampler: DistributedSampler | None = None
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            generator=self.generator if shuffle else None,
            worker_init_fn=worker_init_fn,
        )

    def train_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        if world_size > 1:
            sampler = DistributedSampler(
                self.train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed
            )
            return self._loader(self.train_set, shuffle=True, sampler=sampler)
        return self._loader(self.train_set, shuffle=True)

    def _shard(self, dataset: TensorDataset, rank: int, world_size: int) -> Dataset:
        return Subset(dataset, range(rank, len(dataset), world_size)) if world_size > 1 else dataset

    def val_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        return self._loader(self._shard(self.val_set, rank, world_size), shuffle=False)

    def test_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        return self._loader(self._shard(self.test_set, rank, world_size), shuffle=False)


class SyntheticClassification(DataModule):
    """Gaussian clusters around random class centres: a seeded task that trains in seconds."""

    def __init__(
        self,
        n_samples: int = 2048,
        n_features: int = 20,
        n_classes: int = 4,
        noise: float = 3.0,
        data_seed: int = 0,
        **kwargs: object,
    ) -> None:
        if n_classes < 2 or n_samples < n_classes * 4:
            raise UserError(
                f"synthetic data needs n_classes >= 2 and n_samples >= 4 * n_classes "
                f"(got {n_classes} classes, {n_samples} samples)"
            )
        gen = torch.Generator().manual_seed(data_seed)
        centres = torch.randn(n_classes, n_features, generator=gen) * 1.5
        labels = torch.arange(n_samples) % n_classes
        features = centres[labels] + noise * torch.randn(n_samples, n_features, generator=gen)
        super().__init__(features, labels, split_seed=data_seed, **kwargs)  # type: ignore[arg-type]


class Digits(DataModule):
    """scikit-learn's 8x8 digits (shipped with scikit-learn, no download), scaled to [0, 1]."""

    def __init__(self, **kwargs: object) -> None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise UserError("data=digits needs scikit-learn: pip install -e '.[digits]'") from exc
        digits = load_digits()
        features = torch.tensor(digits.data, dtype=torch.float32) / 16.0
        labels = torch.tensor(digits.target, dtype=torch.long)
        super().__init__(features, labels, **kwargs)  # type: ignore[arg-type]
