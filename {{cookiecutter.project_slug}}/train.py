"""Train a model: `python train.py [overrides]`; sweep: `python train.py -m lr=1e-3,1e-4`.

The science is in src/{{ cookiecutter.package_name }}/ (the loop, data, models) and configs/ (train.yaml and
its groups); the plumbing is the kit, runkit (docs/ in this project says what it does).
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from runkit.preflight import refuse_unknown_group_options
from runkit.sweeps.job import register_sweep_resolvers, run_task

# The configs use the kit's resolvers (${sweep_id:}, ${sweep_dir:...}): registered before Hydra composes them,
# here at import so that a launcher that unpickles `main` in a fresh process (submitit) has them too.
register_sweep_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    # Imported here so that `python train.py --help` and config errors never pay for importing torch.
    from {{ cookiecutter.package_name }}.train import main as train

    # A single run: bad input -> `ERROR: <message>`, exit 1. A sweep job: a failure is recorded and the
    # sweep goes on (sweep.fail_fast=true stops it); the value returned is what a sweeper optimises.
    return run_task(cfg, train)


if __name__ == "__main__":
    # `tracker=[local,nosuch]`: one line naming the options that exist (Hydra does so for `tracker=x` only).
    refuse_unknown_group_options(Path(__file__).parent / "configs")
    main()
