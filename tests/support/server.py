"""Start the real server as a subprocess on ephemeral loopback ports, and talk to it."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY = re.compile(r"openimds: metadata on (http://\S+); admin on (\S+);")


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    metadata_url: str
    admin_url: str
    admin_token: str
    state_path: str
    output: list[str] = field(default_factory=list)

    def get(self, path: str, *, metadata: bool = True, **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if metadata:
            headers.setdefault("Metadata", "true")
        return httpx.get(self.metadata_url + path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def admin(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.request(method, self.admin_url + path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        rest = self.process.stdout.read() if self.process.stdout else ""
        self.output.extend(rest.splitlines())
        return self.process.returncode


def start_server(
    tmp: Path,
    *,
    config: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    state_path: str | None = None,
    admin_token: str = "test-admin-token-0123456789",
    timeout: float = 20.0,
) -> RunningServer:
    """Run `openimds serve` on 127.0.0.1:0 and wait for its ready line."""
    state = state_path or str(tmp / "state.db")
    cmd = [
        sys.executable, "-m", "openimds", "serve",
        "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
        "--state", state, "--rate-limit", "0", *args,
    ]
    if config is not None:
        cmd += ["--config", config]
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")},
        "OPENIMDS_ADMIN_TOKEN": admin_token,
        **(env or {}),
    }
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            match = READY.search(line)
            if match:
                return RunningServer(
                    proc, match.group(1), match.group(2), admin_token, state, lines
                )
        elif proc.poll() is not None:
            break
    proc.kill()
    rest = proc.stdout.read()
    raise RuntimeError("server did not start:\n" + "\n".join(lines) + rest)
