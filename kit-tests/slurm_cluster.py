"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd started from a temp dir.

Where the Debian packages `slurm-wlm` and `munge` are installed (`.ci/run` installs them), the
`slurm_cluster` session fixture writes a slurm.conf for this host (one node with its CPUs and memory, one
partition, ports that are free on 127.0.0.1, state and spool in the temp dir), starts munged (as the munge
user, with its own key and socket), slurmctld and slurmd in the foreground, waits until `sinfo` shows the node
idle, and points SLURM_CONF at it. At the end every daemon it started is stopped by its PID. Where the
binaries are missing (or the daemons cannot start here), the tests that use it skip with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "scontrol", "squeue")
PARTITION = "kit"


def _find(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / name).is_file()), None
    )


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if _find(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    node: str
    partition: str
    cpus: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """What a process needs to talk to this cluster (merged into the caller's environment)."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env()}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%T", check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    def jobs(self) -> list[str]:
        """`<job id>|<state>|<restarts>` of every job the controller knows."""
        out = self.run("squeue", "-h", "-a", "-r", "-o", "%i|%T", check=False)
        return [line for line in out.stdout.splitlines() if line.strip()]

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop every daemon by its PID (slurmd first), waiting for each; SIGKILL past 15 s."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _write_conf(root: Path, node: str, cpus: int, mem_mb: int, munge_socket: Path) -> Path:
    state, spool = root / "state", root / "spool"
    state.mkdir()
    spool.mkdir()
    conf = root / "slurm.conf"
    conf.write_text(
        f"""# A throwaway single-node cluster for the kit's tests (kit-tests/slurm_cluster.py).
ClusterName=kittest
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=300
SlurmdTimeout=60
InactiveLimit=0
PlugStackConfig={root}/plugstack.conf
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    )
    (root / "plugstack.conf").write_text("")
    return conf


def _start_munge(root: Path) -> tuple[subprocess.Popen, Path]:
    """munged as the munge user, with its own key, socket, pid, seed and log in root/munge."""
    mdir = root / "munge"
    mdir.mkdir(mode=0o700)
    key = mdir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = mdir / "munge.socket"
    user = pwd.getpwnam("munge") if _has_user("munge") else None
    if user is not None:
        for path in (mdir, key):
            os.chown(path, user.pw_uid, user.pw_gid)
        root.chmod(0o755)  # the munge user must reach its directory; nothing secret is outside it
    cmd = [
        _find("munged") or "munged",
        "--foreground",
        "--force",
        f"--socket={sock}",
        f"--key-file={key}",
        f"--pid-file={mdir / 'munged.pid'}",
        f"--seed-file={mdir / 'munged.seed'}",
        f"--log-file={mdir / 'munged.log'}",
    ]

    def as_munge() -> None:
        if user is not None:
            os.setgid(user.pw_gid)
            os.setgroups([])
            os.setuid(user.pw_uid)

    log = open(root / "munged.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=as_munge
    )
    return proc, sock


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait(predicate, timeout: float, what: str, cluster: SlurmCluster) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}): {cluster.log(name)}")
        if predicate():
            return
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def start_cluster(root: Path) -> SlurmCluster:
    node = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    mem_mb = max(256, int(_memory_mb() * 0.8))
    cluster = SlurmCluster(root, root / "slurm.conf", node, PARTITION, cpus)
    try:
        munge, sock = _start_munge(root)
        cluster.procs["munged"] = munge
        _wait(sock.exists, 30, "munged's socket", cluster)
        conf = _write_conf(root, node, cpus, mem_mb, sock)
        env = {**os.environ, "SLURM_CONF": str(conf)}
        for name, args in (("slurmctld", ["-D", "-i"]), ("slurmd", ["-D", "-N", node])):
            log = open(root / f"{name}.stdout", "w")  # noqa: SIM115 - closed with the process
            cluster.procs[name] = subprocess.Popen(
                [_find(name) or name, *args, "-f", str(conf)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=root,
            )
        _wait(lambda: cluster.node_state() == "idle", 90, "the node to be idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """The running cluster; SLURM_CONF points at it while the tests run. Skips without the binaries."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs its daemons as root (SlurmUser=root)")
    root = Path(tempfile.mkdtemp(prefix="kit-slurm-"))
    try:
        cluster = start_cluster(root)
    except RuntimeError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a SLURM cluster here: {exc}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        for line in cluster.jobs():
            cluster.run("scancel", line.split("|")[0], check=False)
        cluster.stop()
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        shutil.rmtree(root, ignore_errors=True)
