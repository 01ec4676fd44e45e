"""A few rounds of scripts/crashloop (which kills the server 200 times): SIGKILL at random
moments of VM PUTs, approved events and key rotations loses no acknowledged write,
half-applies none, duplicates none, and leaves a database that passes its integrity
check. The checker itself is shown to notice a lost write."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stress import crashloop
from tests.support.server import start_server


@pytest.mark.slow
def test_kills_at_random_moments_lose_no_acknowledged_write() -> None:
    summary = crashloop.run(kills=4, seed=11, max_delay=1.5)
    assert summary["ok"], summary
    assert summary["kills"] == 4
    assert isinstance(summary["acknowledged_writes"], int)
    assert summary["acknowledged_writes"] > 0


def test_the_checker_notices_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(crashloop.CONFIG)
    server = start_server(tmp_path, config=str(config))
    try:
        claimed = crashloop.Ledger(vms={"v1": 7}, events={"E-never"}, keys=["kid-never"])
        problems = crashloop.check(server, claimed)
    finally:
        server.stop()
    assert any("VM v1 lost" in p for p in problems)
    assert any("event E-never lost" in p for p in problems)
    assert any("key kid-never lost" in p for p in problems)
