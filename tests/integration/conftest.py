from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One demo-VM server shared by the read-only tests (throttling off)."""
    running = start_server(tmp_path_factory.mktemp("live"))
    yield running
    running.stop()
