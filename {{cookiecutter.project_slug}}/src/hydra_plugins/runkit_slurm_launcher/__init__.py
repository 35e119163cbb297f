"""The kit's SLURM launcher: hydra-submitit-launcher's, with jobs that requeue themselves after preemption
and time limits and continue their run (`hydra/launcher=slurm`; the logic is in runkit.sweeps.slurm)."""
