"""A throwaway PostgreSQL cluster from Debian's packages, for the tests that need one.

Started once per test session on a free loopback port, in a temporary directory, and
stopped (immediately, whatever the tests did) when the session ends. initdb refuses to
run as root, so as root the cluster runs as the `postgres` user the package creates.
fsync is off (the machine does not crash under a test), but commits are written before
they are acknowledged, so an immediate stop (a crash of the database) loses nothing
acknowledged, as on a production cluster.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """Debian's postgresql package is not installed (scripts/install --system adds it)."""


@dataclass
class Cluster:
    bindir: Path
    datadir: Path
    sockdir: Path
    port: int
    user: str | None  # run the server as this user (None: as ourselves)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args, check=check)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self.ctl("-o", options, "-l", str(self.datadir / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "immediate", "-w", "stop", check=False)

    def running(self) -> bool:
        return self.ctl("status", check=False).returncode == 0

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", self.user, "--", *cmd] if self.user else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, check=check, timeout=60)


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailable("no PostgreSQL server binaries: run scripts/install --system")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="openimds-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bindir, base / "data", base, _free_port(), user)
    try:
        cluster._run(
            str(bindir / "initdb"),
            "-D",
            str(cluster.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.02)
    return False
