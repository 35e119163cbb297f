"""The training loop: build from the config, fit, evaluate, checkpoint. It talks only to the tracker."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch import nn

from runkit.console import console, summary_table, training_progress
from runkit.errors import UserError
from runkit.repro.checkpoint import load_checkpoint, restore_rng_states, rng_states
from runkit.repro.resume import ResumePoint, init_weights, prepare_resume, restore_training_state
from runkit.repro.seed import seed_everything
from runkit.storage.status import Preempted
from runkit.tracking import ExperimentTracker, start_run
from runkit.tracking.checkpoints import CheckpointPolicy

log = logging.getLogger(__name__)


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


def evaluate(model: nn.Module, loader: Any, device: torch.device) -> dict[str, float]:
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    return {"loss": loss_sum / max(count, 1), "acc": correct / max(count, 1)}


def main(cfg: DictConfig) -> float:
    """Train one run and return the best value of the monitored metric (what a sweeper optimises)."""
    resume: ResumePoint | None = None
    if cfg.get("resume"):
        # The run's own config for this session, and every check, before anything is built or written.
        cfg, resume = prepare_resume(cfg)
    seed = seed_everything(cfg.seed, deterministic=cfg.deterministic)
    if cfg.seed is None:
        log.info("seed=null: drew seed %d (recorded; seed=%d replays the run)", seed, seed)
    with open_dict(cfg):
        cfg.seed = seed  # the seed actually used is what config.yaml, run.json and every backend record
    device = pick_device(str(cfg.device))
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, in_features=datamodule.num_features, num_classes=datamodule.num_classes)
    model.to(device)
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer)
    init_from = None
    if resume is not None:
        restore_training_state(resume.state, model, optimizer, scheduler)
    elif cfg.get("init_from"):
        init_from = init_weights(str(cfg.init_from), Path(cfg.paths.runs_dir), model)

    try:
        with start_run(cfg, resume=resume, init_from=init_from) as tracker:
            return fit(cfg, tracker, model, optimizer, scheduler, datamodule, device, resume)
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
) -> float:
    checkpoints = CheckpointPolicy(tracker, cfg.monitor.metric, cfg.monitor.mode)
    start_epoch, step = 0, 0
    if resume is not None:
        # Model, optimizer and scheduler were loaded before the run started; the RNG states are restored last,
        # right before the first batch, so nothing in between can draw from them.
        start_epoch, step = resume.epoch, resume.step
        restore_rng_states(resume.state["rng"], datamodule.generator)
        log.info("resumed run %s at epoch %d (step %d)", tracker.run_id, start_epoch, step)
    stop_after = cfg.get("stop_after_epochs")

    train_loader = datamodule.train_loader()
    started = time.perf_counter()
    with training_progress() as progress:
        task = progress.add_task("train", total=cfg.epochs * len(train_loader), completed=step, metrics="")
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            for x, y in train_loader:
                x, y = x.to(device), y.to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                step += 1
                loss_value = loss.item()
                tracker.log_metrics(
                    {"train/loss": loss_value, "lr": optimizer.param_groups[0]["lr"]}, step=step
                )
                progress.update(
                    task, advance=1, metrics=f"epoch {epoch + 1}/{cfg.epochs} loss {loss_value:.4f}"
                )
            scheduler.step()
            val = evaluate(model, datamodule.val_loader(), device)
            epoch_metrics = {"epoch": epoch + 1, "val/loss": val["loss"], "val/acc": val["acc"]}
            tracker.log_metrics(epoch_metrics, step=step)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "rng": rng_states(datamodule.generator),
            }
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

    if checkpoints.best_path.exists():
        model.load_state_dict(load_checkpoint(checkpoints.best_path)["model"])
        test = evaluate(model, datamodule.test_loader(), device)
        tracker.log_metrics({"test/loss": test["loss"], "test/acc": test["acc"]}, step=step)
    best = tracker.summary.best_value
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
