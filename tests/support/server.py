"""Start the real server as a subprocess on ephemeral loopback ports, and talk to it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.cli import clean_environment, run_openimds

READY = re.compile(r"openimds: metadata on (http://\S+); admin on (\S+);")
GENERATED = re.compile(r"generated an admin token .*: (\S+)")


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    metadata_url: str
    admin_url: str
    admin_token: str
    state_path: str
    log_path: Path

    @property
    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, *, metadata: bool = True, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if metadata:
            headers.setdefault("Metadata", "true")
        return httpx.get(self.metadata_url + path, headers=headers, **kwargs)

    def post_metadata(self, path: str, body: object) -> httpx.Response:
        """A POST to the metadata listener, as a VM's agent sends one (JSON, Metadata)."""
        return httpx.post(self.metadata_url + path, json=body, headers={"Metadata": "true"})

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.admin_url + path, headers=headers, **kwargs)

    def cli(
        self, *args: str, stdin: str | None = None, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`openimds ...` in a subprocess, pointed at this server's admin API and state by
        the environment (as a user would with OPENIMDS_* variables)."""
        env = {
            "OPENIMDS_ADMIN_LISTEN": self.admin_url.split("://", 1)[-1],
            "OPENIMDS_ADMIN_TOKEN": token or self.admin_token or "",
            "OPENIMDS_STATE": self.state_path,
        }
        return run_openimds(*args, env=env, stdin=stdin)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    tmp: Path,
    *,
    config: str | None = None,
    args: Sequence[str] = (),
    prefix: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    state_path: str | None = None,
    admin_token: str | None = "test-admin-token-0123456789",
    rate_limit: str | None = "0",
    timeout: float = 20.0,
) -> RunningServer:
    """Run `openimds serve` on 127.0.0.1:0 and wait for its ready line. Output goes to a
    file (a pipe nobody reads would block the server once full). `prefix` wraps the
    command, e.g. `nsenter --net=...` to run the server inside a network namespace."""
    state = state_path or str(tmp / "state.db")
    cmd = [
        *prefix,
        sys.executable,
        "-m",
        "openimds",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--state",
        state,
        *(("--rate-limit", rate_limit) if rate_limit is not None else ()),
        *args,
    ]
    if config is not None:
        cmd += ["--config", config]
    full_env = clean_environment(
        {
            **({"OPENIMDS_ADMIN_TOKEN": admin_token} if admin_token is not None else {}),
            **(env or {}),
        }
    )
    log_path = tmp / f"server-{time.monotonic_ns()}.log"
    with log_path.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log_path.read_text(errors="replace")
        match = READY.search(output)
        if match:
            # Without a configured token the server prints the one it generated (once).
            generated = GENERATED.search(output)
            token = admin_token or (generated.group(1) if generated else "")
            return RunningServer(proc, match.group(1), match.group(2), token, state, log_path)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("server did not start:\n" + log_path.read_text(errors="replace"))
