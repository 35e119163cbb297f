"""The training loop: build from the config, fit, evaluate, checkpoint. It talks only to the tracker."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch import nn
from torch.utils.data import DistributedSampler

from runkit.console import console, summary_table, training_progress
from runkit.distributed import Distributed, init_distributed
from runkit.errors import UserError
from runkit.preflight import check_knobs, one_of, require
from runkit.repro.checkpoint import load_checkpoint, restore_rng_states, rng_states
from runkit.repro.dataset import describe
from runkit.repro.resume import ResumePoint, init_weights, prepare_resume, restore_training_state
from runkit.repro.seed import draw_seed, seed_everything, seed_rank
from runkit.storage.status import Preempted
from runkit.tracking import ExperimentTracker, start_run
from runkit.tracking.checkpoints import CheckpointPolicy
from runkit.tracking.media import confusion_image

log = logging.getLogger(__name__)


# What the loop logs at the end of each epoch: what monitor.metric may watch.
EPOCH_METRICS = ("val/loss", "val/acc")


@dataclass(frozen=True)
class Knobs:
    """The science knobs this loop reads, checked before anything starts: a bad one is one line, no run."""

    lr: float
    epochs: int
    batch_size: int
    monitor_metric: str = field(metadata={"key": "monitor.metric"})
    monitor_mode: str = field(metadata={"key": "monitor.mode"})

    def __post_init__(self) -> None:
        require(self.lr > 0, f"lr must be positive, not {self.lr}")
        require(self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}")
        one_of("monitor.metric", self.monitor_metric, EPOCH_METRICS)
        one_of("monitor.mode", self.monitor_mode, ("max", "min"))


class StoppedEarly(Preempted):
    """`stop_after_epochs` reached: the run ends as `preempted` (exactly like a SIGTERM at an epoch boundary),
    its last checkpoint saved, ready for `resume=<run id>`."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device={name} was asked for, but CUDA is not available here (use device=cpu or auto)"
        )
    return torch.device(name)


def evaluate(
    model: nn.Module, loader: Any, device: torch.device, distributed: Distributed | None = None
) -> dict[str, float]:
    """Loss and accuracy over `loader`; under torchrun each rank has a shard, and the sums are added over
    ranks first (global accuracy = correct over every rank / count over every rank)."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    if distributed is not None:
        loss_sum, correct, count = distributed.all_sum([loss_sum, correct, count])
    return {"loss": loss_sum / max(count, 1), "acc": correct / max(count, 1)}


def report_test(tracker: ExperimentTracker, model: nn.Module, datamodule: Any, device: torch.device) -> None:
    """The test set at a glance, in every backend: a confusion matrix image and a table of predictions."""
    model.eval()
    features, labels = datamodule.test_set.tensors
    with torch.no_grad():
        probs = model(features.to(device)).softmax(dim=1).cpu()
    predicted = probs.argmax(dim=1)
    n = datamodule.num_classes
    matrix = torch.zeros(n, n, dtype=torch.long)
    matrix.index_put_((labels, predicted), torch.tensor(1), accumulate=True)  # rows: label; columns: guess
    tracker.log_image(confusion_image(matrix), "confusion_matrix")
    rows = [
        {"label": int(y), "predicted": int(p), "confidence": round(float(c), 4)}
        for y, p, c in zip(labels[:20], predicted[:20], probs.max(dim=1).values[:20], strict=True)
    ]
    tracker.log_table(rows, "test_predictions")


def main(cfg: DictConfig) -> float:
    """Train one run and return the best value of the monitored metric (what a sweeper optimises).

    `python train.py`: one process. `torchrun --nproc_per_node=N train.py`: N processes (ranks) train one run
    with DistributedDataParallel; rank 0 owns the run, the others write nothing (docs/scaling-out.md).
    """
    distributed = init_distributed(str(cfg.device))
    if not distributed.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one rank speaks for the run
    try:
        best = _main(cfg, distributed)
        distributed.barrier()  # leave together: a rank that tears gloo down while another works aborts
        return best
    finally:
        distributed.close()


def _main(cfg: DictConfig, distributed: Distributed) -> float:
    resume: ResumePoint | None = None
    if cfg.get("resume"):
        # The run's own config for this session, and every check, before anything is built or written
        # (by rank 0 alone under torchrun; the others receive its result).
        cfg, resume = distributed.share(lambda: prepare_resume(cfg))
    check_knobs(cfg, Knobs)
    drawn = distributed.share(lambda: draw_seed() if cfg.seed is None else cfg.seed)
    seed = seed_everything(drawn, deterministic=cfg.deterministic)
    if cfg.seed is None:
        log.info("seed=null: drew seed %d (recorded; seed=%d replays the run)", seed, seed)
    with open_dict(cfg):
        cfg.seed = seed  # the seed actually used is what config.yaml, run.json and every backend record
    device = pick_device(distributed.device(str(cfg.device)))
    datamodule = instantiate(cfg.data)
    # Built from the run's seed on every rank: the same initial weights everywhere.
    model = instantiate(cfg.model, in_features=datamodule.num_features, num_classes=datamodule.num_classes)
    model.to(device)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer)
    init_from = None
    if resume is not None:
        restore_training_state(resume.state, model, optimizer, scheduler)
    elif cfg.get("init_from"):
        init_from = init_weights(str(cfg.init_from), Path(cfg.paths.runs_dir), model)
    # From here on each rank draws from its own seed (dropout masks differ across ranks); one process keeps
    # the run's seed.
    seed_rank(seed, distributed.rank, distributed.world_size)

    try:
        with start_run(cfg, resume=resume, init_from=init_from, distributed=distributed) as tracker:
            return fit(cfg, tracker, model, optimizer, scheduler, datamodule, device, resume, distributed)
    except StoppedEarly:
        # The tracker has said how the session ended and how to continue it.
        best = tracker.summary.best_value
        return float(best) if best is not None else float("nan")


def fit(
    cfg: DictConfig,
    tracker: ExperimentTracker,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    datamodule: Any,
    device: torch.device,
    resume: ResumePoint | None = None,
    distributed: Distributed | None = None,
) -> float:
    distributed = distributed or Distributed()
    raw_model = model  # what checkpoints hold (without DDP's `module.` prefix)
    if distributed.enabled:
        # DDP broadcasts rank 0's parameters now and averages gradients in backward().
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    checkpoints = CheckpointPolicy(tracker, cfg.monitor.metric, cfg.monitor.mode)  # rank 0 saves
    start_epoch, step = 0, 0
    if resume is not None:
        # Model, optimizer and scheduler were loaded before the run started; the RNG states are restored last,
        # right before the first batch, so nothing in between can draw from them. Each rank gets its own
        # back when the run is resumed with the same number of processes.
        start_epoch, step = resume.epoch, resume.step
        rng = resume.state["rng"]
        per_rank = resume.state.get("rng_ranks")
        if distributed.enabled and per_rank and len(per_rank) == distributed.world_size:
            rng = per_rank[distributed.rank]
        elif distributed.enabled or per_rank:
            log.warning("resumed with another number of processes: the random streams are not continued")
        restore_rng_states(rng, datamodule.generator)
        log.info("resumed run %s at epoch %d (step %d)", tracker.run_id, start_epoch, step)
    stop_after = cfg.get("stop_after_epochs")
    tracker.log_dataset(describe(datamodule))  # dataset.json: sizes, class counts, content fingerprint

    train_loader = datamodule.train_loader(distributed.rank, distributed.world_size)
    val_loader = datamodule.val_loader(distributed.rank, distributed.world_size)
    sampler = train_loader.sampler
    started = time.perf_counter()
    progress_bar = training_progress()
    progress_bar.disable = not distributed.is_main
    with progress_bar as progress:
        task = progress.add_task("train", total=cfg.epochs * len(train_loader), completed=step, metrics="")
        for epoch in range(start_epoch, cfg.epochs):
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)  # each epoch its own order, the same on every rank
            model.train()
            for x, y in train_loader:
                x, y = x.to(device), y.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                step += 1
                loss_value = distributed.mean(loss)  # loss.item() on one process
                tracker.log_metrics(
                    {"train/loss": loss_value, "train/lr": optimizer.param_groups[0]["lr"]}, step=step
                )
                progress.update(
                    task, advance=1, metrics=f"epoch {epoch + 1}/{cfg.epochs} loss {loss_value:.4f}"
                )
            scheduler.step()
            val = evaluate(raw_model, val_loader, device, distributed)  # a shard per rank, sums reduced
            epoch_metrics = {"epoch": epoch + 1, "val/loss": val["loss"], "val/acc": val["acc"]}
            tracker.log_epoch(epoch_metrics, step=step)  # also a row of history.csv
            state = {
                "model": raw_model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "rng": rng_states(datamodule.generator),
            }
            if distributed.enabled:  # every rank's random state, so that a resume continues each of them
                state["rng_ranks"] = distributed.gather(state["rng"])
            improved = checkpoints.save(state, epoch_metrics, step)
            log.info(
                "epoch %d/%d  val/loss %.4f  val/acc %.4f%s",
                epoch + 1,
                cfg.epochs,
                val["loss"],
                val["acc"],
                "  (best)" if improved else "",
            )
            if stop_after and epoch + 1 - start_epoch >= stop_after and epoch + 1 < cfg.epochs:
                # Ends the run exactly as a SIGTERM at this epoch boundary would: status `preempted`.
                raise StoppedEarly(f"stopped after epoch {epoch + 1} (stop_after_epochs={stop_after})")

    if distributed.broadcast(checkpoints.best_path.exists()):  # written by rank 0
        raw_model.load_state_dict(load_checkpoint(checkpoints.best_path)["model"])
        test_loader = datamodule.test_loader(distributed.rank, distributed.world_size)
        test = evaluate(raw_model, test_loader, device, distributed)
        tracker.log_metrics({"test/loss": test["loss"], "test/acc": test["acc"]}, step=step)
        if distributed.is_main:
            report_test(tracker, raw_model, datamodule, device)
    best = distributed.broadcast(tracker.summary.best_value)
    if not distributed.is_main:
        return float(best) if best is not None else float("nan")
    console.print(
        summary_table(
            tracker.run_id,
            str(tracker.path),
            "completed",
            {k: v for k, v in tracker.summary.last.items() if k != "epoch"},
            {
                f"best {cfg.monitor.metric}": best,
                "steps": step,
                "train time (s)": round(time.perf_counter() - started, 2),
            },
        )
    )
    return float(best) if best is not None else float("nan")
