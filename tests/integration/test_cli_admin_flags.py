"""The admin commands reach a server through flags alone (--admin-listen, --token,
--state), flags win over the environment, a refused token says how to fix it, and reading
a token never creates state."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.attested import fetch_answer
from tests.support.server import RunningServer, server_fixture

TOKEN = "flag-admin-token-0123456789"


# A server that generated its token and keeps it in its state store.
generated = server_fixture("generated", admin_token=None)


def run(
    *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`openimds ...` with no OPENIMDS_* variable unless `env` gives one."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    result = subprocess.run(
        [sys.executable, "-m", "openimds", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def listen_of(server: RunningServer) -> str:
    return server.admin_url.removeprefix("http://")


def test_every_admin_command_takes_the_flags(generated: RunningServer, tmp_path: Path) -> None:
    flags = ("--admin-listen", listen_of(generated), "--token", generated.admin_token)
    answer = fetch_answer(generated, nonce="flags")
    commands: list[tuple[str, ...]] = [
        ("keys", "list"),
        ("events", "list"),
        ("ca", "export", str(tmp_path / "trust")),
        ("attested", "verify", "--no-fetch", "-"),
    ]
    for command in commands:
        result = run(*command, *flags, stdin=answer)
        assert result.returncode == 0, (command, result.stderr)


def test_the_token_is_read_from_the_state_flag(generated: RunningServer) -> None:
    result = run(
        "keys", "list", "--admin-listen", listen_of(generated), "--state", generated.state_path
    )
    assert result.returncode == 0, result.stderr
    assert "active" in result.stdout


def test_flags_win_over_the_environment(generated: RunningServer) -> None:
    env = {"OPENIMDS_ADMIN_LISTEN": "127.0.0.1:9", "OPENIMDS_ADMIN_TOKEN": "wrong-token-0123456789"}
    flags = ("--admin-listen", listen_of(generated), "--token", generated.admin_token)
    result = run("events", "list", *flags, env=env)
    assert result.returncode == 0, result.stderr


def test_the_token_flag_is_also_read_from_the_environment(generated: RunningServer) -> None:
    env = {"OPENIMDS_ADMIN_TOKEN": generated.admin_token}
    result = run("keys", "list", "--admin-listen", listen_of(generated), env=env)
    assert result.returncode == 0, result.stderr


def test_a_refused_token_says_how_to_fix_it(generated: RunningServer) -> None:
    flags = ("--admin-listen", listen_of(generated), "--token", "wrong-token-0123456789")
    result = run("keys", "list", *flags)
    assert result.returncode == 1
    assert result.stderr == (
        "openimds: the admin API refused the token: pass --token or set "
        "OPENIMDS_ADMIN_TOKEN to the server's admin token, or --state to the server's "
        "state store\n"
    )


def test_looking_for_a_token_creates_nothing(generated: RunningServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    result = run("keys", "list", "--admin-listen", listen_of(generated), env=env)
    assert result.returncode == 1
    assert "no admin token" in result.stderr
    assert list(home.iterdir()) == []
