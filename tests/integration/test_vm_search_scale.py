"""Searching ten thousand VMs through the admin API stays fast: the search texts are
built once per inventory change, not per request (docs/performance.md, "Searching
the inventory")."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import start_server

pytestmark = pytest.mark.slow

COUNT = 10_000
RUNS = 20


def _write_fleet(path: Path) -> None:
    vms = [
        {
            "name": f"vm-{i:05d}",
            "addresses": [f"127.10.{i // 250}.{i % 250 + 1}"],
            "instance": {
                "compute": {
                    "vmId": f"00000000-0000-4000-8000-{i:012d}",
                    "vmSize": "Standard_B2s",
                    "location": "westeurope",
                    "resourceGroupName": f"group-{i % 7}",
                    "tags": f"team:t{i % 13};env:prod",
                }
            },
            "identities": {"systemAssigned": True},
        }
        for i in range(COUNT)
    ]
    path.write_text(json.dumps({"vms": vms}))


def _median_seconds(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = client.get(url)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), answer


def test_a_summary_search_over_ten_thousand_vms(tmp_path: Path) -> None:
    config = tmp_path / "fleet.json"
    _write_fleet(config)
    server = start_server(tmp_path, config=str(config), timeout=120)
    try:
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        with httpx.Client(base_url=server.admin_url, headers=headers, timeout=30) as client:
            started = time.perf_counter()
            first = client.get("/vms?view=summary&limit=1")  # builds every VM's card
            cold = time.perf_counter() - started
            assert first.json()["total"] == COUNT
            few, narrow = _median_seconds(client, "/vms?view=summary&q=vm-0999&limit=50")
            many, wide = _median_seconds(client, "/vms?view=summary&q=PROD&limit=50")
            changed = {"addresses": ["127.10.0.2"], "instance": {"compute": {"tags": "x:new"}}}
            assert client.put("/vms/vm-00001", json=changed).status_code == 200
            started = time.perf_counter()
            after = client.get("/vms?view=summary&q=x&tag=x=new&limit=50")  # one card anew
            renewed = time.perf_counter() - started
        print(f"\n{COUNT} VMs: first summary {cold * 1000:.1f} ms; search with 10 matches "
              f"{few * 1000:.1f} ms, with {COUNT} matches {many * 1000:.1f} ms (median of {RUNS}); "
              f"after one VM changed {renewed * 1000:.1f} ms")  # fmt: skip
        assert [vm["name"] for vm in after.json()["vms"]] == ["vm-00001"]
        assert narrow.json()["total"] == 10
        assert [vm["name"] for vm in narrow.json()["vms"]][:2] == ["vm-09990", "vm-09991"]
        assert wide.json()["total"] == COUNT and len(wide.json()["vms"]) == 50
        assert few < 0.2 and many < 0.2 and renewed < 0.2
    finally:
        server.stop()
