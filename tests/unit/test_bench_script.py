"""scripts/bench parses its options and plans the documented runs (no load is generated)."""

from __future__ import annotations

import subprocess
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

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
    assert len(loads) == 7
    assert all(line.startswith("taskset -c 1 wrk -t1 -c32 -d3s --latency") for line in loads)
    assert all("http://127.0.0.1:" in line for line in loads)
    assert sum("Metadata: true" in line for line in loads) == 6  # not the missing-header case
    assert any("format=text" in line for line in loads)
    tokens = [line for line in loads if "/metadata/identity/oauth2/token" in line]
    assert len(tokens) == 2 and sum("bypass_cache=true" in line for line in tokens) == 1
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


def test_a_fleet_takes_five_rounds_unless_told() -> None:
    bench = _load_bench()
    assert bench.parse_args([]).runs == 1
    assert bench.parse_args(["--fleet", "10"]).runs == 5
    assert bench.parse_args(["--fleet", "10", "--runs", "3"]).runs == 3


def _load_bench() -> ModuleType:
    loader = SourceFileLoader("openimds_bench_script", str(BENCH))
    module = ModuleType(loader.name)
    module.__file__ = str(BENCH)
    sys.modules[loader.name] = module  # dataclasses look their module up while building
    try:
        loader.exec_module(module)
    finally:
        del sys.modules[loader.name]
    return module


WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:40000/metadata/instance?api-version=2025-04-07
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   310.12us  120.40us   9.87ms   95.12%
    Req/Sec   101.23k     3.01k  110.00k    80.00%
  Latency Distribution
     50%  290.00us
     75%  320.00us
     90%  380.00us
     99%    1.20ms
  1007306 requests in 10.00s, 3.50GB read
  Non-2xx or 3xx responses: 12
Requests/sec: 100730.60
Transfer/sec:    358.10MB
"""


def test_wrk_output_is_read() -> None:
    bench = _load_bench()
    sample = bench.parse_wrk(WRK_OUTPUT)
    assert sample.rps == 100730.60
    assert sample.p50_ms == 0.29
    assert sample.p99_ms == 1.2
    assert sample.requests == 1007306
    assert sample.non2xx == 12


def test_table_shows_ratios_to_nginx() -> None:
    bench = _load_bench()
    ours = bench.Result(
        "full document",
        rps=[70.0, 80.0],
        p50_ms=[0.3, 0.2],
        p99_ms=[1.0, 0.9],
        non2xx=[0, 0],
        cpu_us=[6.0, 5.0],
    )
    nginx = bench.Result(
        "nginx static", rps=[100.0], p50_ms=[0.3], p99_ms=[1.1], non2xx=[0], cpu_us=[4.0]
    )
    header, row, nginx_row = bench.table([ours, nginx]).splitlines()
    assert "vs nginx" in header
    # best run by req/s, its spread, latencies, 80% of nginx's req/s, cpu 4/5 of nginx's.
    assert row.split()[2:] == ["80", "70-80", "0.200", "0.900", "0", "80%", "5.00", "80%"]
    assert nginx_row.split()[-3:] == ["100%", "4.00", "100%"]


def test_verdict_judges_the_target() -> None:
    bench = _load_bench()

    def result(name: str, rps: float, p99: float) -> object:
        return bench.Result(name, rps=[rps], p50_ms=[0.2], p99_ms=[p99], non2xx=[0], cpu_us=[5])

    nginx = result("nginx static", 100.0, 0.5)
    assert bench.verdict([result("full document", 70.0, 2.0), nginx]).startswith("target met")
    assert "NOT met" in bench.verdict([result("full document", 69.0, 0.5), nginx])
    assert "NOT met" in bench.verdict([result("full document", 99.0, 2.5), nginx])
    assert "not judged" in bench.verdict([nginx])
