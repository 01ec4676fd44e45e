"""A failing store says so once, and once that it works again, however many requests
meet the failure."""

from __future__ import annotations

import logging

import pytest

from openimds.store.base import OutageLog


def test_one_line_per_outage_and_one_per_recovery(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog("the state database /x/state.db")
    with caplog.at_level(logging.INFO, logger="openimds.store"):
        outage.succeeded()
        for _ in range(100):
            outage.failed("attempt to write a readonly database")
        for _ in range(3):
            outage.succeeded()
        outage.failed("disk I/O error")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "the state database /x/state.db is failing (attempt to write a readonly database): "
            "changes are refused with 503 until it recovers; the metadata API keeps answering",
        ),
        ("WARNING", "the state database /x/state.db works again: changes are accepted"),
        (
            "ERROR",
            "the state database /x/state.db is failing (disk I/O error): changes are refused "
            "with 503 until it recovers; the metadata API keeps answering",
        ),
    ]
