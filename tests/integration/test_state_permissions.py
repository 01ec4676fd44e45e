"""`serve` and `config check` refuse a state that other users may read or write: one
line naming the path, its mode and the chmod to run; exit 2; no listener opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_openimds
from tests.support.server import start_server

TOKEN = {"OPENIMDS_ADMIN_TOKEN": "test-admin-token-0123456789"}


def _serve(state: Path) -> tuple[int, str, str]:
    result = run_openimds(
        "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
        "--state", str(state), env=TOKEN,
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state a server created (private) and left behind."""
    running = start_server(tmp_path, state_path=str(tmp_path / "state" / "state.db"))
    running.stop()
    return Path(running.state_path)


@pytest.mark.parametrize(
    ("which", "mode", "fix"),
    [("directory", 0o755, "700"), ("database", 0o644, "600"), ("lock", 0o666, "600")],
)
def test_serve_refuses_a_state_open_to_others(state: Path, which: str, mode: int, fix: str) -> None:
    target = {"directory": state.parent, "database": state, "lock": Path(f"{state}.lock")}[which]
    os.chmod(target, mode)
    code, out, err = _serve(state)
    assert code == 2
    assert out == ""  # no ready line: nothing was served
    assert err.splitlines() == [
        f"openimds: the state {'directory' if which == 'directory' else 'file'} {target} "
        f"is readable or writable by other users (mode {mode:04o}); it holds private keys: "
        f"run `chmod {fix} {target}` and start again"
    ]
    checked = run_openimds("config", "check", env={"OPENIMDS_STATE": str(state)})
    assert checked.returncode == 2
    assert checked.stderr == err  # what `check` refuses, `serve` refuses


def test_after_the_chmod_the_server_starts(state: Path, tmp_path: Path) -> None:
    os.chmod(state, 0o644)
    assert _serve(state)[0] == 2
    os.chmod(state, 0o600)
    again = start_server(tmp_path, state_path=str(state))
    assert again.get("/metadata/instance?api-version=2021-02-01").status_code == 200
    again.stop()
