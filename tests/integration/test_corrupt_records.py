"""A record in a valid SQLite store that cannot be decoded stops the start with one line
naming the file, the record's kind and key, and what is wrong: exit 2, no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import start_server

# A VM whose identity ids are generated and kept in the store.
CONFIG = """
name: generated
identities:
  systemAssigned: true
"""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a store a real server created (events, keys, ids, CA), checkpointed."""
    tmp = tmp_path_factory.mktemp("pristine")
    config = tmp / "vm.yaml"
    config.write_text(CONFIG)
    server = start_server(tmp, config=str(config))
    try:
        scheduled = server.admin(
            "POST", "/events", json={"type": "Freeze", "target": "vm:generated"}
        )
        assert scheduled.status_code == 201
        # The CA is made by a worker after the start; an attested answer waits for it.
        document = server.get("/metadata/attested/document?api-version=2021-02-01")
        assert document.status_code == 200
    finally:
        assert server.stop() == 0
    with sqlite3.connect(server.state_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(server.state_path).read_bytes()


def _serve(tmp: Path, state: Path) -> subprocess.CompletedProcess[str]:
    config = tmp / "vm.yaml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    env["OPENIMDS_ADMIN_TOKEN"] = "test-admin-token-0123456789"
    command = [sys.executable, "-m", "openimds", "serve", "--config", str(config)]
    command += ["--state", str(state), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=20, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the server started: {exc.stdout!r}") from None


@pytest.mark.parametrize(
    ("kind", "key", "value", "what"),
    [
        ("scheduled_event", None, "{bad", "not valid JSON"),
        ("identity_key", None, "garbage", "not valid JSON"),
        ("scheduled_event_incarnation", "generated", "abc", "invalid literal for int()"),
        ("identity_id", "generated/system/clientId", "not-a-guid", "not a GUID"),
        ("attested_ca", "root", '{"cert": "x", "key": "y"}', "not a PEM certificate"),
    ],
)
def test_corrupt_record_stops_the_start_with_one_line(
    pristine: bytes, tmp_path: Path, kind: str, key: str | None, value: str, what: str
) -> None:
    state = tmp_path / "state.db"
    state.touch(mode=0o600)  # a copy of a state must be as private as the state
    state.write_bytes(pristine)
    with sqlite3.connect(state) as db:
        if key is None:  # the one record of that kind the server wrote
            (key,) = db.execute("SELECT key FROM records WHERE kind = ?", (kind,)).fetchone()
        changed = db.execute(
            "UPDATE records SET value = ? WHERE kind = ? AND key = ?", (value, kind, key)
        )
        assert changed.rowcount == 1
    result = _serve(tmp_path, state)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    prefix = f"openimds: state store {state}: corrupt {kind} record {key}: "
    assert result.stderr.startswith(prefix), result.stderr
    assert what in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""
