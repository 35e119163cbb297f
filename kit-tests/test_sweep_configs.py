"""The sweep configs compose as documented: the SLURM launcher, the Optuna search, and the sweep directory
(new, or the one `sweep.resume` names)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from runkit.sweeps.job import register_sweep_resolvers

from conftest import ROOT

CONFIGS = ROOT / "configs"
register_sweep_resolvers()


def compose_hydra(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[f"paths.root={tmp_path}", *overrides],
            return_hydra_config=True,
        )


def test_the_slurm_launcher_config_builds_on_submitit_slurm(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_hydra(tmp_path, "hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    launcher = cfg.hydra.launcher
    assert (
        launcher._target_ == "hydra_plugins.runkit_slurm_launcher.launcher.SlurmLauncher"
    )  # submitit_slurm + requeue
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1 and launcher.array_parallelism == 32
    assert launcher.timeout_min == 60 and launcher.tasks_per_node == 1
    assert OmegaConf.to_container(launcher)["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"


@pytest.mark.parametrize("mode", ["max", "min"])
def test_the_optuna_search_follows_the_monitored_metric(tmp_path, mode):
    cfg = compose_hydra(tmp_path, "hparams_search=optuna", f"monitor.mode={mode}")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("_optuna_sweeper.sweeper.OptunaSweeper")
    assert sweeper.direction == mode and sweeper.seed == cfg.seed and sweeper.sampler == "tpe"
    assert set(sweeper.params) == {"lr", "model.dropout"} and "log" in sweeper.params.lr
    raw = OmegaConf.to_container(sweeper)
    assert raw["storage"] == "sqlite:///${hydra.sweep.dir}/optuna.db"


def test_a_new_sweep_gets_a_fresh_directory_under_runs_sweeps(tmp_path):
    cfg = compose_hydra(tmp_path, "name=exp")
    sweep_dir = Path(cfg.hydra.sweep.dir)
    assert sweep_dir.parent == tmp_path / "runs" / "sweeps"
    stamp, name, sweep_id = sweep_dir.name[:15], sweep_dir.name[16:19], sweep_dir.name.rsplit("-", 1)[-1]
    assert stamp[8] == "-" and name == "exp" and len(sweep_id) == 6
    assert cfg.hydra.sweep.dir == cfg.hydra.sweep.dir  # cached: the same on every read


def test_sweep_resume_writes_into_the_named_sweep(tmp_path):
    old = tmp_path / "runs" / "sweeps" / "20250101-000000-train-abc123"
    old.mkdir(parents=True)
    (old / "sweep.json").write_text("{}")
    assert Path(compose_hydra(tmp_path, "sweep.resume=abc").hydra.sweep.dir) == old.resolve()
    assert Path(compose_hydra(tmp_path, f"sweep.resume={old}").hydra.sweep.dir) == old.resolve()
    assert Path(compose_hydra(tmp_path, "sweep.resume=last").hydra.sweep.dir) == old.resolve()
