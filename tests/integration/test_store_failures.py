"""A state store that fails for real (its disk is full): admin writes answer 503 with a
clear error, the CLI prints one line, and the server logs no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.disks import fill, tiny_tmpfs
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.root


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tiny_tmpfs(tmp_path / "disk") as mount:
        yield mount


@pytest.fixture
def full(disk: Path, tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, state_path=str(disk / "state.db"))
    try:
        # The attested-data certificates are made on a worker after the start: let them
        # be written first, so the disk fails only the writes under test.
        attested = server.get("/metadata/attested/document?api-version=2021-02-01")
        assert attested.status_code == 200
        fill(disk)
        yield server
    finally:
        server.stop()


def _assert_clean_503(server: RunningServer, method: str, path: str, **kwargs: object) -> None:
    response = server.admin(method, path, **kwargs)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith("state store: ")
    assert "full" in error


@pytest.mark.parametrize(
    ("cli", "route"),
    [
        (["keys", "rotate"], ("POST", "/identity/keys/rotate", {})),
        (
            ["events", "schedule", "Freeze", "--vm", "demo-vm"],
            ("POST", "/events", {"json": {"type": "Freeze", "target": "vm:demo-vm"}}),
        ),
    ],
    ids=["keys-rotate", "events-schedule"],
)
def test_a_full_disk_is_a_clean_503(
    full: RunningServer, cli: list[str], route: tuple[str, str, dict[str, object]]
) -> None:
    method, path, kwargs = route
    _assert_clean_503(full, method, path, **kwargs)
    result = full.cli(*cli)
    assert result.returncode == 1
    assert result.stderr.startswith("openimds: state store: state database ")
    assert result.stderr.rstrip().endswith("is full (503)")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in full.output
    # Nothing was half-written: the server still answers, with its old keys.
    assert full.get("/metadata/instance?api-version=2021-02-01").status_code == 200
    assert len(full.admin("GET", "/identity/keys").json()["keys"]) == 1


def test_writes_work_again_once_space_is_freed(full: RunningServer, disk: Path) -> None:
    for _ in range(5):
        assert full.admin("POST", "/identity/keys/rotate").status_code == 503
    assert full.output.count("is failing") == 1  # one line for the outage, not per request
    (disk / "filler").unlink()
    rotated = full.admin("POST", "/identity/keys/rotate")
    assert rotated.status_code == 200, rotated.text
    keys = full.admin("GET", "/identity/keys").json()["keys"]
    assert [k["kid"] for k in keys if k["active"]] == [rotated.json()["kid"]]
    assert all(k["removeAfter"] is not None for k in keys if not k["active"])
    assert full.output.count("works again") == 1
    assert full.output.count("is failing") == 1
