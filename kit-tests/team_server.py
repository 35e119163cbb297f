"""A team tracking server for the tests: a throwaway PostgreSQL cluster and an MLflow server on it that
proxies artifacts (`mlflow server --backend-store-uri postgresql+psycopg://... --serve-artifacts
--artifacts-destination <dir>`), both on 127.0.0.1, started by the `team_server` session fixture and stopped
by their PIDs at the end. Skipped (with the reason) without PostgreSQL's binaries or the psycopg driver."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tracking_runs import free_port, start_mlflow_server, wait_for

DB_USER, DB_NAME = "kit", "mlflow"


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class TeamServer:
    root: Path
    db_password: str
    port: int = field(default_factory=free_port)
    pg_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_uri(self) -> str:
        return f"postgresql+psycopg://{DB_USER}:{self.db_password}@127.0.0.1:{self.pg_port}/{DB_NAME}"

    @property
    def artifacts(self) -> Path:
        return self.root / "server-artifacts"

    def start_mlflow(self, timeout: float = 120) -> None:
        self.procs["mlflow"] = start_mlflow_server(
            self.root, self.port, self.backend_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
            timeout=timeout,
        )  # fmt: skip

    def stop_mlflow(self) -> None:
        """Stop the server (its process group: gunicorn/uvicorn workers included) and wait for it."""
        proc = self.procs.pop("mlflow", None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop(self) -> None:
        self.stop_mlflow()
        proc = self.procs.pop("postgres", None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _as_user(name: str):  # type: ignore[no-untyped-def]
    user = pwd.getpwnam(name)

    def switch() -> None:
        os.setgid(user.pw_gid)
        os.setgroups([])
        os.setuid(user.pw_uid)

    return user, switch


def start_postgres(server: TeamServer, bindir: Path) -> None:
    """initdb + postgres (foreground, stopped by PID) as the `postgres` user when run as root."""
    data = server.root / "pgdata"
    pwfile = server.root / "pgpass"
    pwfile.write_text(server.db_password + "\n")
    preexec = None
    if os.geteuid() == 0:
        user, preexec = _as_user("postgres")
        server.root.chmod(0o755)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
        data.mkdir(mode=0o700)
        os.chown(data, user.pw_uid, user.pw_gid)
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, f"--pwfile={pwfile}",
         "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, preexec_fn=preexec, cwd=server.root,
    )  # fmt: skip
    pwfile.unlink()
    log = open(server.root / "postgres.log", "w")  # noqa: SIM115
    server.procs["postgres"] = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(server.pg_port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}", "-c", "fsync=off"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec, start_new_session=True, cwd=server.root,
    )  # fmt: skip
    import psycopg

    def ready() -> bool:
        proc = server.procs["postgres"]
        if proc.poll() is not None:
            raise AssertionError(f"postgres exited: {(server.root / 'postgres.log').read_text()[-2000:]}")
        try:
            with psycopg.connect(
                host="127.0.0.1", port=server.pg_port, user=DB_USER, password=server.db_password,
                dbname="postgres", autocommit=True, connect_timeout=2,
            ) as conn:  # fmt: skip
                conn.execute(f"CREATE DATABASE {DB_NAME}")
            return True
        except psycopg.OperationalError:
            return False

    wait_for(ready, 60, "PostgreSQL")


@pytest.fixture(scope="session")
def team_server() -> Iterator[TeamServer]:
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed (pip install 'psycopg[binary]')")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no `postgres` user to run PostgreSQL as")
    server = TeamServer(Path(tempfile.mkdtemp(prefix="kit-team-")), "pg-" + secrets.token_hex(12))
    try:
        start_postgres(server, bindir)
        server.start_mlflow()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
