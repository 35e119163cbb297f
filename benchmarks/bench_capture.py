"""How long the reproducibility capture adds to the start of a run (target: under 0.2 s).

Composes the project's real config, imports torch first (as training does, so torch's own import is not
counted), then times `capture_run` (git.json + git.diff + environment.json + config hash) into fresh run
directories against the project's repository (or `--repo`), and each of its parts on its own:

- first: the first capture in the process (cold caches: what a real run start pays);
- best / median of `--repeat` further captures.

Usage: python benchmarks/bench_capture.py [--repeat 20] [--repo PATH] [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from example_project import ROOT  # noqa: E402 - bakes the example project, puts its src/ on the path

TARGET_S = 0.2


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    """(first call, the next `repeat` calls) in seconds."""
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times[0], times[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--repo", type=Path, default=ROOT, help="the repository to capture (default: project)"
    )
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 when the first capture is over {TARGET_S}s"
    )
    args = parser.parse_args()

    import torch  # noqa: F401  (training imports it before the run starts; its import is not capture time)
    from hydra import compose, initialize_config_dir

    from runkit.repro import environment as env_capture
    from runkit.repro.capture import capture_run
    from runkit.repro.config_hash import config_hash
    from runkit.repro.git import git_state, write_diff
    from runkit.storage.run_dir import RunDir
    from runkit.sweeps.resolvers import register_resolvers

    register_resolvers()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        overrides = [f"paths.root={args.repo.resolve()}", f"paths.runs_dir={tmp_path / 'runs'}"]
        with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        counter = iter(range(10**6))

        def capture() -> dict[str, Any]:
            run_dir = RunDir(tmp_path / f"run{next(counter)}")
            run_dir.path.mkdir()
            return capture_run(run_dir, cfg)

        first, rest = timed(capture, args.repeat)
        fields = capture()
        state = git_state(args.repo)
        parts = {
            "git status/remote (git_state)": lambda: git_state(args.repo),
            "git diff (write_diff, if dirty)": lambda: write_diff(
                args.repo, state, tmp_path / "git.diff", 10**6
            ),
            "packages (dist-info scan)": env_capture.installed_packages,
            "torch/CUDA/GPU info": env_capture.torch_info,
            "os/python/cpu/memory": lambda: (env_capture.os_info(), env_capture.memory_bytes()),
            "environment variables": env_capture.allowed_env,
            "config hash": lambda: config_hash(cfg),
        }
        rows = [(name, *timed(fn, args.repeat)) for name, fn in parts.items()]

    ms = 1000.0
    print(
        f"capture_run on {args.repo} (git: {'dirty' if fields['git']['dirty'] else 'clean'}, "
        f"{len(env_capture.installed_packages())} packages), {args.repeat} repeats"
    )
    print(f"{'part':34s} {'first ms':>9s} {'best ms':>9s} {'median ms':>10s}")
    for name, cold, warm in rows:
        print(f"{name:34s} {cold * ms:9.2f} {min(warm) * ms:9.2f} {statistics.median(warm) * ms:10.2f}")
    print(
        f"{'TOTAL capture_run':34s} {first * ms:9.2f} {min(rest) * ms:9.2f} "
        f"{statistics.median(rest) * ms:10.2f}"
    )
    verdict = "OK" if first < TARGET_S else "OVER TARGET"
    print(
        f"capture adds {first * ms:.1f} ms to a run start "
        f"(first call; target < {TARGET_S * ms:.0f} ms): {verdict}"
    )
    return 1 if args.check and first >= TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
