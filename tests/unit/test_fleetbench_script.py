"""scripts/fleetbench.py judges the spread figure over rounds that take turns (no server
is started and no load is generated here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FLEETBENCH = Path(__file__).resolve().parents[2] / "scripts" / "fleetbench.py"


@pytest.fixture
def fleetbench() -> Iterator[ModuleType]:
    loader = SourceFileLoader("openimds_fleetbench_script", str(FLEETBENCH))
    module = ModuleType(loader.name)
    module.__file__ = str(FLEETBENCH)
    sys.modules[loader.name] = module
    try:
        loader.exec_module(module)
        yield module
    finally:
        del sys.modules[loader.name]


def test_rounds_take_turns_and_the_median_ratio_is_the_figure(
    fleetbench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, many = object(), object()
    order: list[str] = []
    # Round by round: single 100, 100, 50 req/s; spread 95, 40, 48 req/s.
    rps = {"one": iter([100.0, 100.0, 50.0]), "many": iter([95.0, 40.0, 48.0])}

    def fake_load(server: object, sources: list[str], seconds: float) -> dict[str, float]:
        name = "one" if server is one else "many"
        order.append(name)
        assert len(sources) == 1000 and seconds == 5.0
        assert len(set(sources)) == (1 if name == "one" else 1000)
        cpu = 10.0 if name == "one" else 12.5
        return {"rps": next(rps[name]), "non200": 0, "server_cpu_us": cpu}

    monkeypatch.setattr(fleetbench, "load", fake_load)
    summary: dict[str, Any] = fleetbench.throughput(one, many, 10_000, 5.0, 3)
    assert order == ["one", "many", "many", "one", "one", "many"]
    assert summary["spread_vs_single_runs"] == [0.95, 0.4, 0.96]
    assert summary["spread_vs_single"] == 0.95  # the median, not the last or the best
    assert summary["single_vm"]["rps_median"] == 100
    assert summary["spread"]["rps_runs"] == [95, 40, 48]
    assert summary["cpu_single_vs_spread"] == 0.8


def test_addresses_are_loopback_and_distinct(fleetbench: ModuleType) -> None:
    addresses = [fleetbench.address(i) for i in range(10_000)]
    assert len(set(addresses)) == 10_000
    assert all(a.startswith("127.10.") and not a.endswith(".0") for a in addresses)
