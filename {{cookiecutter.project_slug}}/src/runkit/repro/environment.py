"""Environment capture: interpreter, OS, hardware, torch/CUDA, installed packages, command line, and
environment variables from an allow-list with secret-looking values masked.

Everything here is cheap (a few milliseconds): installed packages are read from the names of the
`*.dist-info` folders on sys.path instead of parsing every package's metadata (which takes ~0.15 s), and
torch is only asked about CUDA when the training code has already imported it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import socket
import sys
from pathlib import Path
from typing import Any

from runkit.repro.git import strip_credentials

MASK = "***"
# Variables worth recording: they change what a run does or where it runs. Anything else is left out.
ENV_ALLOW_PREFIXES = (
    "CUDA_",
    "CUBLAS_",
    "CUDNN_",
    "NCCL_",
    "NVIDIA_",
    "TORCH_",
    "PYTORCH_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "KMP_",
    "SLURM_",
    "PBS_",
    "LSB_",
    "SGE_",
    "HYDRA_",
    "WANDB_",
    "MLFLOW_",
    "TF_",
)
ENV_ALLOW_NAMES = frozenset(
    {
        "PYTHONHASHSEED",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "CONDA_DEFAULT_ENV",
        "CONDA_PREFIX",
        "LD_LIBRARY_PATH",
        "HOSTNAME",
        "USER",
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
    }
)
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIAL|AUTH|PRIVATE|SESSION", re.I)
_URL_WITH_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*@")
_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d[^-]*)?\.(?:dist|egg)-info$")


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def mask_value(name: str, value: str) -> str:
    """The value to record for a variable or option called `name`: masked when it looks secret, and
    credentials removed from a URL value (`MLFLOW_TRACKING_URI=https://user:pw@host`)."""
    if looks_secret(name):
        return MASK
    if _URL_WITH_USERINFO.match(value):
        return strip_credentials(value)
    return value


def allowed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Allow-listed environment variables, secret-looking values masked."""
    environ = dict(os.environ if environ is None else environ)
    return {
        name: mask_value(name, value)
        for name, value in sorted(environ.items())
        if name in ENV_ALLOW_NAMES or name.startswith(ENV_ALLOW_PREFIXES)
    }


def mask_overrides(overrides: list[str]) -> list[str]:
    """Hydra overrides with the values of secret-looking keys masked (`tracker.wandb.api_key=...`)."""
    masked = []
    for item in overrides:
        key, sep, value = item.partition("=")
        masked.append(f"{key}{sep}{mask_value(key, value)}" if sep else item)
    return masked


def installed_packages() -> dict[str, str]:
    """{distribution name: version} of everything importable, read from the dist-info folder names.

    The first folder on sys.path that holds a package wins, as for imports. A metadata folder whose name does
    not carry the version (an old-style `name.egg-info`) is read properly.
    """
    packages: dict[str, str] = {}
    seen_dirs: set[str] = set()
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        if folder in seen_dirs or not os.path.isdir(folder):
            continue
        seen_dirs.add(folder)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if not name.endswith(("dist-info", "egg-info")):
                continue
            match = _DIST_INFO.match(name)
            if match:
                dist, version = match["name"], match["version"]
            else:
                dist, version = _read_metadata(Path(folder, name))
                if not dist:
                    continue
            key = dist.lower().replace("-", "_").replace(".", "_")
            packages.setdefault(key, version)
    return dict(sorted(packages.items()))


def _read_metadata(path: Path) -> tuple[str | None, str]:
    from importlib.metadata import Distribution

    try:
        meta = Distribution.at(path).metadata
        return meta["Name"], meta["Version"] or "?"
    except Exception:  # a broken folder must not stop the capture
        return None, "?"


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX (Windows): unknown
        return None


def cpu_count() -> dict[str, int | None]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"logical": os.cpu_count(), "usable": usable}


def torch_info() -> dict[str, Any] | None:
    """torch, CUDA, cuDNN and GPUs, if the training code imported torch (never imported here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    cuda = bool(torch.cuda.is_available())
    info: dict[str, Any] = {
        "version": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cudnn_available": bool(torch.backends.cudnn.is_available()),
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "num_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "gpus": [],
    }
    if cuda:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            info["gpus"].append(
                {
                    "index": index,
                    "name": props.name,
                    "memory_bytes": int(props.total_memory),
                    "capability": f"{props.major}.{props.minor}",
                    "multiprocessors": int(props.multi_processor_count),
                }
            )
        info["driver"] = _nvidia_driver()
    return info


def _nvidia_driver() -> str | None:
    """The NVIDIA driver version from /proc (Linux), without running nvidia-smi (slow)."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(\S+)", text)
    return match.group(1) if match else None


def os_info() -> dict[str, Any]:
    uname = platform.uname()
    info: dict[str, Any] = {
        "system": uname.system,
        "release": uname.release,
        "version": uname.version,
        "machine": uname.machine,
        "processor": uname.processor or None,
    }
    if hasattr(platform, "freedesktop_os_release"):
        with contextlib.suppress(OSError):
            info["distribution"] = platform.freedesktop_os_release().get("PRETTY_NAME")
    return info


def environment(overrides: list[str] | None = None) -> dict[str, Any]:
    """Everything environment.json holds."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "virtualenv": sys.prefix != sys.base_prefix,
        },
        "os": os_info(),
        "hostname": socket.gethostname(),
        "cpu": cpu_count(),
        "memory_bytes": memory_bytes(),
        "torch": torch_info(),
        "command": {
            "argv": mask_overrides(argv),
            "cwd": os.getcwd(),
            "overrides": mask_overrides(list(overrides or [])),
        },
        "env": allowed_env(),
        "packages": installed_packages(),
    }


def summary(env: dict[str, Any]) -> dict[str, Any]:
    """The few environment fields worth having in run.json."""
    torch = env.get("torch") or {}
    return {
        "python": env["python"]["version"],
        "torch": torch.get("version"),
        "cuda": torch.get("cuda_version") if torch.get("cuda_available") else None,
        "gpus": [g["name"] for g in torch.get("gpus", [])],
        "os": f"{env['os']['system']} {env['os']['release']}",
    }
