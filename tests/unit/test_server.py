"""How `openimds serve` builds its listener from the configuration, and the hints it adds
when the metadata listener cannot bind."""

from __future__ import annotations

import errno
import gc

from openimds.config import load_config
from openimds.runtime import build_runtime
from openimds.server import _hint, metadata_server, release_start_memory


def test_missing_imds_address_points_at_net_up() -> None:
    error = OSError(errno.EADDRNOTAVAIL, "cannot assign requested address")
    assert "sudo openimds net up" in _hint("169.254.169.254", error)


def test_privileged_port_says_what_is_needed() -> None:
    error = OSError(errno.EACCES, "permission denied")
    assert "CAP_NET_BIND_SERVICE" in _hint("127.0.0.1", error)


def test_other_failures_get_no_hint() -> None:
    assert _hint("127.0.0.1", OSError(errno.EADDRINUSE, "address in use")) == ""
    assert _hint("10.9.9.9", OSError(errno.EADDRNOTAVAIL, "cannot assign")) == ""


def test_the_listener_gets_the_configured_idle_timeout() -> None:
    flags = {"server.idle_timeout": 7, "state.path": ":memory:"}
    runtime = build_runtime(load_config(None, env={}, flags=flags), features=[])
    try:
        assert metadata_server(runtime).idle_ticks == 7
    finally:
        runtime.close()


def test_after_the_start_the_collector_is_on_and_the_start_frozen() -> None:
    gc.disable()  # as `openimds serve` starts
    try:
        release_start_memory()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # later collections skip what the start built
    finally:
        gc.unfreeze()
        gc.enable()
