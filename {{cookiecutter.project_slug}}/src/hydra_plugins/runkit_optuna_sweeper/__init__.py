"""A small Hydra sweeper on current Optuna (TPE, sqlite storage), shipped with the project.

Why our own: the released hydra-optuna-sweeper (1.3.0) pins optuna<3, and optuna 2.x's sqlite storage does
not work with SQLAlchemy 2 (which MLflow 3 needs). Hydra finds this plugin in the `hydra_plugins` namespace
package; `hparams_search=optuna` (configs/hparams_search/optuna.yaml) selects it. Hydra imports every plugin
module at start-up, so nothing here imports optuna until a search actually runs.
"""
