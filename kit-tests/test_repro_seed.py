"""Seeds: always applied (0 is a seed), `null` draws one and records it, the same seed gives the same run bit
for bit, a different seed a different one; DataLoader workers and RNG checkpointing; determinism on GPU."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from research_project.data import SyntheticClassification
from runkit.errors import UserError
from runkit.repro.checkpoint import restore_rng_states, rng_states
from runkit.repro.seed import seed_everything, worker_init_fn

from repro_helpers import (
    RUN,
    checkpoint_state,
    metric_history,
    read_events,
    record,
    shared_runs,
    tensors_equal,
)


def draws(generator: torch.Generator | None = None) -> tuple:
    values = (random.random(), float(np.random.rand()), torch.rand(3).tolist())
    return (*values, torch.rand(2, generator=generator).tolist()) if generator is not None else values


# --- in-process -----------------------------------------------------------------------------------
def test_seed_zero_is_a_seed():
    assert seed_everything(0) == 0
    first = draws()
    assert seed_everything(0) == 0 and draws() == first
    seed_everything(1)
    assert draws() != first


def test_seed_none_draws_a_seed_that_replays_the_same_draws():
    used = seed_everything(None)
    assert isinstance(used, int) and 0 <= used < 2**31
    first = draws()
    seed_everything(used)
    assert draws() == first
    assert len({seed_everything(None) for _ in range(5)}) > 1


@pytest.mark.parametrize("bad", ["abc", -1, 1.5, True, 2**64])
def test_a_bad_seed_is_one_clear_error(bad):
    with pytest.raises(UserError, match="seed must be an integer from 0 to 2\\*\\*63-1, or null"):
        seed_everything(bad)


def test_deterministic_turns_torch_deterministic_algorithms_on_and_off(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        seed_everything(3, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        seed_everything(3, deterministic=False)  # a later job in the same process does not inherit it
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


class NoisyDataset(Dataset):
    """Draws from NumPy and `random` inside the worker: reproducible only if workers are seeded."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[int, float, float]:
        return index, float(np.random.rand()), random.random()


def loader_values(seed: int, num_workers: int) -> list:
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        NoisyDataset(),
        batch_size=2,
        shuffle=True,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=worker_init_fn,
    )
    return [[t.tolist() for t in batch] for epoch in range(2) for batch in loader]


def test_dataloader_workers_and_shuffling_are_seeded():
    first = loader_values(5, num_workers=2)
    assert loader_values(5, num_workers=2) == first
    other = loader_values(6, num_workers=2)
    assert other != first
    order = [i for batch in first for i in batch[0]]
    assert sorted(order) == sorted(list(range(8)) * 2) and order[:8] != list(range(8))
    numpy_values = [v for batch in first for v in batch[1]]
    assert len(set(numpy_values)) == len(numpy_values)  # workers do not share one NumPy stream


def test_the_data_module_shuffles_from_the_run_seed():
    def order(seed: int) -> list[int]:
        seed_everything(seed)
        module = SyntheticClassification(n_samples=64, batch_size=8, val_fraction=0.1, test_fraction=0.1)
        return [int(y) for _ in range(2) for _, ys in module.train_loader() for y in ys]

    assert order(11) == order(11) != order(12)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    from runkit.repro.checkpoint import load_checkpoint, save_checkpoint

    seed_everything(9)
    generator = torch.Generator().manual_seed(9)
    draws(generator)
    save_checkpoint(tmp_path / "c.pt", rng=rng_states(generator))
    expected = draws(generator)
    draws(generator)
    restore_rng_states(load_checkpoint(tmp_path / "c.pt")["rng"], generator)
    assert draws(generator) == expected


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_gpu_deterministic_training_is_bit_for_bit_repeatable():
    def train_once() -> dict:
        seed_everything(21, deterministic=True)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 30 * 30, 10)
        ).cuda()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(20):
            x = torch.randn(16, 3, 32, 32, device="cuda")
            y = torch.randint(0, 10, (16,), device="cuda")
            loss = torch.nn.functional.cross_entropy(torch.nn.functional.dropout(model(x), 0.2), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}

    try:
        assert tensors_equal(train_once(), train_once())
        states = rng_states()
        expected = torch.rand(4, device="cuda")
        restore_rng_states(states)
        assert torch.equal(torch.rand(4, device="cuda"), expected)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


# --- through real runs ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """a, b: seed=7 twice (b with another project root, which must not matter). drawn: seed=null. replay:
    seed=<the seed drawn>, started afterwards. (Made once per session in repro_helpers.shared_runs.)"""
    runs = shared_runs(tmp_path_factory)
    return {"a": runs["full"], "b": runs["twin"], "drawn": runs["drawn"], "replay": runs["replay"]}


def same_run(x, y) -> bool:
    hx, hy = metric_history(x), metric_history(y)
    assert len(hx) > 30 and hx.keys() == hy.keys()
    weights_equal = tensors_equal(checkpoint_state(x)["model"], checkpoint_state(y)["model"])
    assert (hx == hy) == weights_equal, "metrics and weights disagree about the runs being the same"
    return hx == hy


@pytest.mark.slow
def test_the_same_seed_gives_identical_metrics_and_weights(seeded):
    assert same_run(seeded["a"], seeded["b"])
    assert record(seeded["a"])["config_hash"] == record(seeded["b"])["config_hash"]


@pytest.mark.slow
def test_seed_null_records_the_seed_actually_used_everywhere(seeded):
    drawn = seeded["drawn"]
    seed = record(drawn)["seed"]
    assert isinstance(seed, int)
    assert yaml.safe_load((drawn / "config.yaml").read_text())["seed"] == seed
    assert yaml.safe_load((drawn / "overrides.yaml").read_text()) == [
        f"paths.runs_dir={drawn.parent}",
        *RUN,
        "seed=null",
    ]
    events = read_events(drawn)
    params = next(e for e in events if e["type"] == "params")["data"]
    tags = {k: v for e in events if e["type"] == "tags" for k, v in e["data"].items()}
    assert params["seed"] == seed and tags["seed"] == str(seed)


@pytest.mark.slow
def test_the_recorded_seed_recreates_a_seed_null_run_exactly(seeded):
    assert same_run(seeded["drawn"], seeded["replay"])
    assert record(seeded["drawn"])["config_hash"] == record(seeded["replay"])["config_hash"]


@pytest.mark.slow
def test_a_different_seed_gives_a_different_run(seeded):
    if record(seeded["drawn"])["seed"] == 7:
        pytest.skip("seed=null drew 7 (a one in two billion chance)")
    assert not same_run(seeded["a"], seeded["drawn"])
    assert record(seeded["a"])["config_hash"] != record(seeded["drawn"])["config_hash"]
