"""scripts/bench parses its options and plans the documented runs (no load is generated)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], check=False, capture_output=True, text=True, timeout=30
    )


def test_help_lists_the_options() -> None:
    result = run_bench("--help")
    assert result.returncode == 0, result.stderr
    for option in ("--duration", "--runs", "--json", "--dry-run", "--connections"):
        assert option in result.stdout


def test_dry_run_plans_pinned_loopback_runs() -> None:
    result = run_bench("--dry-run", "--duration", "3s", "--no-install")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    serves = [line for line in lines if " serve " in line]
    # One server with throttling off, one with the default budget for the 429 case.
    assert len(serves) == 2
    assert "--rate-limit 0" in serves[0] and "--rate-limit" not in serves[1]
    assert all(line.startswith("taskset -c 0 ") for line in serves)
    loads = [line for line in lines if " wrk " in line]
    assert len(loads) == 5
    assert all(line.startswith("taskset -c 1 wrk -t1 -c32 -d3s --latency") for line in loads)
    assert all("http://127.0.0.1:" in line for line in loads)
    assert sum("Metadata: true" in line for line in loads) == 4  # not the missing-header case
    assert any("format=text" in line for line in loads)
    assert not any("scripts/install" in line for line in lines)


def test_dry_run_includes_install_by_default() -> None:
    result = run_bench("--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "scripts/install --system"


def test_durations_are_bounded() -> None:
    for bad in ("0s", "301s", "10h", "ten"):
        result = run_bench("--dry-run", "--duration", bad)
        assert result.returncode == 2
        assert "duration" in result.stderr


def test_connections_and_runs_are_bounded() -> None:
    assert run_bench("--dry-run", "--connections", "0").returncode == 2
    assert run_bench("--dry-run", "--runs", "11").returncode == 2
