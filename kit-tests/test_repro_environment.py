"""Environment capture, the config hash, and the cost of the whole capture."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from runkit.repro import environment as env_capture
from runkit.repro.capture import capture_run
from runkit.repro.config_hash import config_hash
from runkit.storage.run_dir import RunDir

from conftest import ROOT
from repro_helpers import make_repo, record

SECRET = "hunter2-very-secret"


def test_environment_variables_come_from_an_allow_list_with_secrets_masked():
    env = env_capture.allowed_env(
        {
            "CUDA_VISIBLE_DEVICES": "0,1",
            "SLURM_JOB_ID": "4242",
            "WANDB_API_KEY": SECRET,
            "MLFLOW_TRACKING_PASSWORD": SECRET,
            "MLFLOW_TRACKING_URI": f"https://bob:{SECRET}@mlflow.example.com",
            "HF_TOKEN": SECRET,  # not allow-listed at all
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "HOME": "/home/bob",
        }
    )
    assert env == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "MLFLOW_TRACKING_PASSWORD": "***",
        "MLFLOW_TRACKING_URI": "https://mlflow.example.com",
        "SLURM_JOB_ID": "4242",
        "WANDB_API_KEY": "***",
    }


def test_secret_looking_overrides_are_masked():
    masked = env_capture.mask_overrides(
        ["lr=0.1", f"tracker.wandb.api_key={SECRET}", f"+db_password={SECRET}"]
    )
    assert masked == ["lr=0.1", "tracker.wandb.api_key=***", "+db_password=***"]


def test_installed_packages_match_importlib_metadata():
    fast = env_capture.installed_packages()
    for name in ("torch", "numpy", "hydra-core", "omegaconf", "pytest"):
        key = name.replace("-", "_")
        assert fast[key] == importlib.metadata.version(name), name
    assert len(fast) >= 20


def test_environment_json_content(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    env = env_capture.environment(["lr=0.1"])
    assert env["python"]["version"] == platform.python_version()
    assert env["python"]["executable"] == sys.executable
    assert env["os"]["system"] == platform.system() and env["hostname"]
    assert env["cpu"]["logical"] >= 1 and (env["memory_bytes"] is None or env["memory_bytes"] > 2**20)
    assert env["torch"]["version"] == torch.__version__
    assert env["torch"]["cuda_available"] == torch.cuda.is_available()
    assert env["torch"]["cudnn_available"] == torch.backends.cudnn.is_available()
    assert len(env["torch"]["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert env["command"]["overrides"] == ["lr=0.1"]
    assert env["env"]["CUDA_VISIBLE_DEVICES"] == "" and env["env"]["WANDB_API_KEY"] == "***"
    assert SECRET not in json.dumps(env)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpus_are_described():
    gpus = env_capture.torch_info()["gpus"]
    assert [g["name"] for g in gpus] == [
        torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
    ]
    assert all(g["memory_bytes"] > 2**30 for g in gpus)
    assert env_capture.torch_info()["cuda_version"] == torch.version.cuda


def test_config_hash_ignores_what_differs_per_run_and_sees_what_matters():
    base = {
        "seed": 1,
        "lr": 0.001,
        "model": {"_target_": "m.MLP", "hidden_sizes": [64, 64]},
        "paths": {"root": "/a", "runs_dir": "/a/runs"},
        "name": "train",
        "tags": [],
        "tracker": {"local": {}},
        "resume": None,
        "init_from": None,
        "git": {"require_clean": False},
    }
    same = {
        **base,
        "paths": {"root": "/b", "runs_dir": "/elsewhere"},
        "name": "other",
        "tags": ["x"],
        "tracker": {"mlflow": {}},
        "resume": "abc",
        "git": {"require_clean": True},
    }
    reordered = dict(reversed(list(base.items())))
    h = config_hash(OmegaConf.create(base))
    assert len(h) == 12 and int(h, 16) >= 0
    assert (
        config_hash(OmegaConf.create(same))
        == h
        == config_hash(OmegaConf.create(reordered))
        == config_hash(base)
    )
    assert config_hash({**base, "lr": 0.002}) != h
    assert config_hash({**base, "seed": 2}) != h
    assert config_hash({**base, "model": {"_target_": "m.MLP", "hidden_sizes": [64, 32]}}) != h
    # Pinned: the hash must not change between versions for the same config (runs are found by it).
    assert config_hash({"lr": 0.5, "model": {"width": 3}, "paths": {"root": "/x"}}) == "e737cb648dcd"


def test_config_hash_resolves_interpolations():
    a = OmegaConf.create({"lr": 0.1, "optimizer": {"lr": "${lr}"}, "paths": {"root": "${oops:never}"}})
    b = OmegaConf.create({"lr": 0.1, "optimizer": {"lr": 0.1}})
    assert config_hash(a) == config_hash(b)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command line")
def test_capture_is_fast_and_writes_its_files(tmp_path, capsys):
    repo = make_repo(tmp_path / "repo")
    (repo / "model.py").write_text("WIDTH = 1\n")
    cfg = OmegaConf.create({"seed": 1, "paths": {"root": str(repo)}, "git": {"diff_max_bytes": 10_000}})
    timings = []
    for i in range(3):
        run_dir = RunDir(tmp_path / f"run{i}")
        run_dir.path.mkdir()
        started = time.perf_counter()
        fields = capture_run(run_dir, cfg)
        timings.append(time.perf_counter() - started)
        assert {p.name for p in run_dir.path.iterdir()} == {"git.json", "git.diff", "environment.json"}
    with capsys.disabled():
        print(
            f"\ncapture_run: best {min(timings) * 1000:.1f} ms of {[round(t * 1000, 1) for t in timings]} ms"
        )
    assert min(timings) < 0.2
    assert fields["git"]["dirty"] and fields["config_hash"] == config_hash(cfg) and fields["warnings"] == []
    assert 0 < fields["capture_seconds"] < 1


@pytest.mark.slow
def test_a_run_records_its_environment_and_config_hash(default_run):
    env = json.loads((default_run / "environment.json").read_text())
    assert env["torch"]["version"] == torch.__version__ and env["packages"]["torch"] == torch.__version__
    assert env["python"]["version"] == platform.python_version()
    assert env["command"]["argv"][1].endswith("train.py") and "tracker=local" in env["command"]["overrides"]
    rec = record(default_run)
    config = yaml.safe_load((default_run / "config.yaml").read_text())
    assert rec["config_hash"] == config_hash(config)
    assert rec["environment"]["torch"] == torch.__version__
    assert 0 < rec["capture_seconds"] < 1  # the figure itself is checked (< 0.2 s) in-process above
    assert Path(env["command"]["cwd"]).resolve() == ROOT
