"""Train a model: `python train.py [overrides]`; sweep: `python train.py -m lr=1e-3,1e-4`.

See configs/train.yaml for the knobs and docs/sweeps.md (template repo) for sweeps, launchers and Optuna.
"""

import hydra
from omegaconf import DictConfig

# Importing sweep_job registers the OmegaConf resolvers the configs use (sweep_id, sweep_dir).
from runkit.sweeps.job import run_task


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    # Imported here so that `python train.py --help` and config errors never pay for importing torch.
    from {{ cookiecutter.package_name }}.train import main as train

    # A single run: bad input -> `ERROR: <message>`, exit 1. A sweep job: a failure is recorded and the
    # sweep goes on (sweep.fail_fast=true stops it); the value returned is what a sweeper optimises.
    return run_task(cfg, train)


if __name__ == "__main__":
    main()
