"""`hydra/launcher=slurm`: hydra-submitit-launcher's SLURM launcher + runkit.sweeps.slurm.RequeueingJob.

Hydra builds launchers only from the hydra_plugins package, and imports every module in it at start-up:
without hydra-submitit-launcher (the `sweeps` extra) this module defines nothing and says nothing.
"""

from __future__ import annotations

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurm
except ImportError:  # pragma: no cover - the sweeps extra is not installed
    pass
else:
    from runkit.sweeps.slurm import RequeueingJob

    class SlurmLauncher(RequeueingJob, _SubmititSlurm):
        """submitit's SLURM launcher whose preempted jobs requeue themselves and resume their run."""
