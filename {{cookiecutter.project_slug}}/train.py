"""Train a model: `python train.py [overrides]`. See configs/train.yaml for the knobs."""

import sys

import hydra
from omegaconf import DictConfig

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    # Imported here so that `python train.py --help` and config errors never pay for importing torch.
    from {{ cookiecutter.package_name }}.train import main as train

    try:
        return train(cfg)
    except UserError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
