"""Start the real server as a subprocess on ephemeral loopback ports, and talk to it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from openimds.testing.process import READY, start_process, stop_process
from tests.support.cli import clean_environment, run_openimds

__all__ = ["READY", "RunningServer", "server_fixture", "serving", "start_server"]
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
        return stop_process(self.process, sig)


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
    proc, ready = start_process(cmd, log_path, env=full_env, timeout=timeout)
    # Without a configured token the server prints the one it generated (once).
    generated = GENERATED.search(log_path.read_text(errors="replace"))
    token = admin_token or (generated.group(1) if generated else "")
    return RunningServer(proc, ready.group(1), ready.group(2), token, state, log_path)


@contextmanager
def serving(
    tmp: Path, start: Callable[..., RunningServer] = start_server, **options: Any
) -> Iterator[RunningServer]:
    """`start(tmp, **options)` (start_server unless given) for the length of a block."""
    running = start(tmp, **options)
    try:
        yield running
    finally:
        running.stop()


def server_fixture(
    name: str,
    *,
    scope: Literal["session", "module"] = "module",
    config_text: str | None = None,
    start: Callable[..., RunningServer] = start_server,
    **options: Any,
) -> Any:
    """A fixture called `name`: one server for every test of its scope (a module unless
    given), started by `start(tmp, **options)`; `config_text` is written to a file in
    its folder and passed as `config`."""

    @pytest.fixture(scope=scope, name=name)
    def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
        tmp = tmp_path_factory.mktemp(name)
        given = dict(options)
        if config_text is not None:
            config = tmp / "config.yaml"
            config.write_text(config_text)
            given["config"] = str(config)
        with serving(tmp, start, **given) as server:
            yield server

    return running
