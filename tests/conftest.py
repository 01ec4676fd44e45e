from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The real server with the built-in demo VM, throttling off."""
    running = start_server(tmp_path)
    yield running
    running.stop()
