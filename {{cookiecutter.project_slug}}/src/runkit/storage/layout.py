"""Every file and folder name of a run directory and of a sweep directory: the on-disk contract, in one place.

<runs_dir>/<YYYYmmdd-HHMMSS>-<name>-<run id>/                 a run directory
    run.json  config.yaml  overrides.yaml  events.jsonl  summary.json  train.log  traceback.txt
    environment.json  git.json  git.diff  checkpoints/  artifacts/  figures/  resumes/<n>/  shipper/
    media/  history.csv  dataset.json  system.jsonl
<runs_dir>/sweeps/<YYYYmmdd-HHMMSS>-<name>-<sweep id>/         a sweep directory
    sweep.json  summary.csv  summary.md  jobs/  .stop  optimization_results.yaml  <run directories>

Only names live here (no paths, no io): every module that reads or writes these files imports them from
here, so renaming one is a one-line change.
"""

from __future__ import annotations

from typing import Final

# --- a run directory --------------------------------------------------------------------------------------
RUN_FILE: Final = "run.json"  # the run record: id, name, status, times, backends (storage/records.py)
CONFIG_FILE: Final = "config.yaml"  # the resolved config of the run (updated on a resume)
OVERRIDES_FILE: Final = "overrides.yaml"  # the command-line overrides the run was started with
EVENTS_FILE: Final = "events.jsonl"  # the append-only event log: metrics, artifacts, status changes
SUMMARY_FILE: Final = "summary.json"  # last and best value of each metric, last step
TRAIN_LOG_FILE: Final = "train.log"  # the run's Python logging output (and the shipper's warnings)
TRACEBACK_FILE: Final = "traceback.txt"  # the exception that failed the run, when it failed
ENVIRONMENT_FILE: Final = "environment.json"  # python, packages, platform, hardware at the start
GIT_FILE: Final = "git.json"  # commit, branch, dirty flag, remote at the start
GIT_DIFF_FILE: Final = "git.diff"  # uncommitted changes (tracked and untracked) at the start, when dirty
CHECKPOINTS_DIR: Final = "checkpoints"  # model checkpoints (last.pt, best.pt, ...)
LAST_CHECKPOINT: Final = "last.pt"  # the checkpoint a resume continues from, inside checkpoints/
ARTIFACTS_DIR: Final = "artifacts"  # files logged as artifacts
FIGURES_DIR: Final = "figures"  # figures logged by the run
MEDIA_DIR: Final = "media"  # images and tables logged with log_image / log_table (PNG, CSV)
HISTORY_FILE: Final = "history.csv"  # one row per epoch (tracker.log_epoch)
DATASET_FILE: Final = "dataset.json"  # what the run trained on: name, source, split sizes, fingerprint
SYSTEM_FILE: Final = "system.jsonl"  # CPU, memory, GPU of the training process, sampled by the shipper
RESUMES_DIR: Final = "resumes"  # resumes/<n>/: what each resume session captured (config, git, environment)
CONFIG_BEFORE_FILE: Final = "config.before.yaml"  # in resumes/<n>/: the config as it was before that resume
SHIPPER_DIR: Final = "shipper"  # the shipper's cursor files, one per backend
SHIPPER_LOG_FILE: Final = "shipper.log"  # the shipper process's own log

# --- a sweep directory ------------------------------------------------------------------------------------
SWEEPS_DIR: Final = "sweeps"  # <runs_dir>/sweeps/: one folder per sweep
SWEEP_FILE: Final = "sweep.json"  # the sweep record: grid, launcher, jobs, status (sweeps/records.py)
SWEEP_SUMMARY_CSV: Final = "summary.csv"  # one row per job: overrides, status, duration, monitored metric
SWEEP_SUMMARY_MD: Final = "summary.md"  # the same for people, plus failures and mean/std over seeds
SWEEP_JOBS_DIR: Final = "jobs"  # jobs/<NNNN>-<attempt>.json: one small record per job attempt
# jobs/.<NNNN>-<scheduler job>.decision: rank 0's decision for the other tasks of a multi-task job
SWEEP_JOB_DECISION_SUFFIX: Final = ".decision"
SWEEP_JOB_TRACEBACK_SUFFIX: Final = ".traceback.txt"  # jobs/<NNNN>-<attempt>.traceback.txt: no run dir yet
SWEEP_STOP_FILE: Final = ".stop"  # written by a job that asks the rest of the sweep not to start
OPTUNA_RESULTS_FILE: Final = "optimization_results.yaml"  # the Optuna sweeper's best trial(s)
HYDRA_MULTIRUN_FILE: Final = "multirun.yaml"  # Hydra's own record of a sweep's config, in the sweep dir
