"""The hints `openimds serve` adds when the metadata listener cannot bind."""

from __future__ import annotations

import errno

from openimds.server import _hint


def test_missing_imds_address_points_at_net_up() -> None:
    error = OSError(errno.EADDRNOTAVAIL, "cannot assign requested address")
    assert "sudo openimds net up" in _hint("169.254.169.254", error)


def test_privileged_port_says_what_is_needed() -> None:
    error = OSError(errno.EACCES, "permission denied")
    assert "CAP_NET_BIND_SERVICE" in _hint("127.0.0.1", error)


def test_other_failures_get_no_hint() -> None:
    assert _hint("127.0.0.1", OSError(errno.EADDRINUSE, "address in use")) == ""
    assert _hint("10.9.9.9", OSError(errno.EADDRNOTAVAIL, "cannot assign")) == ""
