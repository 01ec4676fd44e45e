"""The open-file limit is raised toward the hard limit, and the connection cap fitted to
what it allows, with a warning when that is fewer than configured."""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator

import pytest

from openimds.web.metadata.fdlimit import RESERVE, connection_budget


@pytest.fixture
def limits() -> Iterator[tuple[int, int]]:
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield saved
    resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def test_the_soft_limit_is_raised_to_fit_the_cap(limits: tuple[int, int]) -> None:
    _, hard = limits
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    assert connection_budget(2000) == 2000
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 2000 + RESERVE


def test_a_hard_limit_below_the_cap_lowers_it_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A hard limit cannot be raised back once lowered, so this one is only pretended.
    current = [1024, 1500]

    def setrlimit(which: int, value: tuple[int, int]) -> None:
        current[:] = value

    monkeypatch.setattr(resource, "getrlimit", lambda which: tuple(current))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    with caplog.at_level(logging.WARNING, logger="openimds"):
        assert connection_budget(16384) == 1500 - RESERVE
    assert current == [1500, 1500]  # raised as far as it goes
    assert "server.max_connections is 16384" in caplog.text
    assert f"room for {1500 - RESERVE}" in caplog.text


def test_the_default_cap_over_many_listeners_is_an_info_line_per_listener(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    current = [1024, 20000]
    monkeypatch.setattr(resource, "getrlimit", lambda which: tuple(current))
    monkeypatch.setattr(resource, "setrlimit", lambda which, value: current.__setitem__(0, 20000))
    with caplog.at_level(logging.INFO, logger="openimds"):
        assert connection_budget(16384, 6, configured=False) == (20000 - RESERVE) // 6
    assert [record.levelname for record in caplog.records] == ["INFO"]
    assert "server.max_connections is 16384 (the default) on each of 6 listeners" in caplog.text
    assert "98304" not in caplog.text


def test_the_server_limits_follow_the_config() -> None:
    from openimds.config import load_config
    from openimds.runtime import build_runtime
    from openimds.server import metadata_server

    flags = {
        "server.head_timeout": 4,
        "server.max_connections": 50,
        "server.max_connections_per_source": 0,
        "state.path": ":memory:",
    }
    runtime = build_runtime(load_config(None, env={}, flags=flags), features=[])
    try:
        server = metadata_server(runtime)
        assert (server.head_ticks, server.max_connections, server.max_per_source) == (4, 50, 50)
    finally:
        runtime.close()
