from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One demo-VM server shared by the read-only tests (throttling off)."""
    # Many tests send refused tokens to this one server: more than one source may send
    # per minute (tests/integration/test_admin_logins.py tests the limit).
    no_limit = {"OPENIMDS_ADMIN_LOGIN_FAILURES": "0"}
    running = start_server(tmp_path_factory.mktemp("live"), env=no_limit)
    yield running
    running.stop()
