"""One SQLite state store, one server: a second server on the same file is refused before
it opens a socket, and a crash (SIGKILL) leaves nothing that blocks the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.server import start_server


def _second_serve(state: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    env["OPENIMDS_ADMIN_TOKEN"] = "test-admin-token-0123456789"
    command = [sys.executable, "-m", "openimds", "serve", "--state", state]
    command += ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=10, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the second server kept running: {exc.stdout!r}") from None


def test_a_second_server_on_one_state_store_is_refused(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    first = start_server(tmp_path, state_path=state)
    try:
        second = _second_serve(state)
        assert second.returncode == 2
        assert second.stdout == ""  # no listener was opened, so no ready line
        assert second.stderr.startswith(
            f"openimds: the state store {state} is in use by another openimds server "
            f"(pid {first.process.pid});"
        )
        assert len(second.stderr.splitlines()) == 1
        assert first.get("/metadata/instance?api-version=2021-02-01").status_code == 200
    finally:
        first.stop(signal.SIGKILL)
    again = start_server(tmp_path, state_path=state)  # the kernel dropped the dead lock
    again.stop()


def test_readers_are_not_blocked_by_a_running_server(tmp_path: Path) -> None:
    """The CLI reads a generated admin token from the store while the server runs."""
    server = start_server(tmp_path, admin_token=None)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
        env["OPENIMDS_ADMIN_LISTEN"] = server.admin_url.removeprefix("http://")
        env["OPENIMDS_STATE"] = server.state_path
        result = subprocess.run(
            [sys.executable, "-m", "openimds", "keys", "list"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    finally:
        server.stop()
