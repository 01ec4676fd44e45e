"""Fault injection end to end: rules from the admin API, the CLI and the configuration
file act on the real listener over loopback; faulted answers are never cached, show in
the access log with their rule and in /metrics; the journal records them."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_openimds
from tests.support.server import RunningServer, server_fixture, start_server

INSTANCE = "/metadata/instance?api-version=2021-02-01"
NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"


server = server_fixture("server")


@pytest.fixture(autouse=True)
def no_rules(server: RunningServer) -> Iterator[None]:
    yield
    assert server.admin("DELETE", "/faults").status_code == 200


def add(server: RunningServer, **rule: object) -> dict[str, object]:
    answer = server.admin("POST", "/faults", json=rule)
    assert answer.status_code == 201, answer.text
    created: dict[str, object] = answer.json()["rule"]
    return created


def test_a_rule_limited_to_two_hits_fires_exactly_twice(server: RunningServer) -> None:
    assert server.get(NAME).text == "demo-vm"  # cached before the rule
    add(server, id="twice", path="/metadata/instance", status=500, times=2)
    answers = [server.get(NAME) for _ in range(4)]
    assert [a.status_code for a in answers] == [500, 500, 200, 200]
    assert answers[0].json() == {"error": "Internal server error"}
    # The cached answer was neither poisoned nor did it hide the fault.
    assert answers[2].text == answers[3].text == "demo-vm"
    rule = server.admin("GET", "/faults").json()["rules"][0]
    assert (rule["id"], rule["hits"], rule["spent"]) == ("twice", 2, True)


def test_a_scripted_sequence_then_the_real_answer(server: RunningServer) -> None:
    add(server, path="/metadata/instance", sequence=[410, 429, 200, 503], retry_after=2)
    answers = [server.get(INSTANCE) for _ in range(5)]
    assert [a.status_code for a in answers] == [410, 429, 200, 503, 200]
    assert answers[1].headers["Retry-After"] == "2"
    assert answers[0].json() == {"error": "IMDS is being updated. Retry after some time"}
    assert answers[2].json()["compute"]["name"] == "demo-vm"


def test_identity_answers_keep_the_identity_shape(server: RunningServer) -> None:
    add(server, path="/metadata/identity/*", status=429, times=1)
    token = (
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    )
    faulted = server.get(token)
    assert faulted.status_code == 429
    assert faulted.json() == {
        "error": "too_many_requests",
        "error_description": "Too many requests",
    }
    assert server.get(token).status_code == 200


def test_scoped_to_a_vm_that_is_not_the_caller(tmp_path: Path) -> None:
    config = tmp_path / "two.yaml"
    config.write_text(
        "vms:\n"
        "  - {name: caller, addresses: [127.0.0.1]}\n"
        "  - {name: some-other-vm, addresses: [127.0.0.9]}\n"
    )
    running = start_server(tmp_path, config=str(config))
    try:
        add(running, vm="some-other-vm", status=500)
        assert running.get(INSTANCE).status_code == 200
        add(running, vm="caller", status=503)
        assert running.get(INSTANCE).status_code == 503
    finally:
        running.stop()


def test_latency_fixed_delays_the_answer(server: RunningServer) -> None:
    add(server, path="/metadata/instance/compute", latency=0.6, times=1)
    started = time.monotonic()
    slow = server.get(NAME)
    slow_took = time.monotonic() - started
    started = time.monotonic()
    fast = server.get(NAME)
    fast_took = time.monotonic() - started
    assert slow.text == fast.text == "demo-vm"
    assert slow_took >= 0.6 > fast_took


def test_latency_keeps_pipelined_answers_in_order(server: RunningServer) -> None:
    add(server, path="/metadata/instance/compute/name", latency=[0.3, 0.5], times=1)
    host, port = server.metadata_url.removeprefix("http://").split(":")
    one = f"GET {NAME} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n"
    two = f"GET {INSTANCE} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall((one + two).encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    first, _, rest = data.partition(b"demo-vm")
    assert first.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 7" in first
    assert rest.startswith(b"HTTP/1.1 200 OK") and b'"compute"' in rest


def test_close_hangs_up_without_an_answer(server: RunningServer) -> None:
    add(server, path="/metadata/instance", close=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        server.get(NAME)
    assert server.get(NAME).status_code == 200


def test_hang_holds_the_connection_until_the_client_gives_up(server: RunningServer) -> None:
    add(server, path="/metadata/instance", hang=True, times=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        server.get(NAME, timeout=httpx.Timeout(5, read=1.0))
    assert time.monotonic() - started >= 1.0
    assert server.get(NAME).status_code == 200


def test_boot_window_from_the_admin_api(server: RunningServer) -> None:
    answer = server.admin("POST", "/faults/boot", json={"seconds": 1.5})
    assert answer.status_code == 201
    assert server.get(NAME).status_code == 410
    assert server.get("/metadata/scheduledevents?api-version=2020-07-01").status_code == 410
    time.sleep(1.6)
    assert server.get(NAME).status_code == 200


def test_bad_rules_and_unknown_ids_are_refused(server: RunningServer) -> None:
    bad = server.admin("POST", "/faults", json={"status": 200})
    assert bad.status_code == 400
    assert bad.json() == {"error": "the rule: status: 200 is not an error status (400-599)"}
    assert server.admin("DELETE", "/faults/nope").status_code == 404
    assert server.admin("POST", "/faults/boot", json={}).status_code == 400


def test_cli_add_list_remove_clear(server: RunningServer) -> None:
    added = server.cli("faults", "add", "--path", "/metadata/instance", "--sequence", "410,200")
    assert added.returncode == 0, added.stderr
    rule_id = added.stdout.strip()
    server.cli("faults", "add", "--status", "503", "--retry-after", "5", "--vm", "demo-vm")
    listed = server.cli("faults", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "VM", "PATH", "DOES", "HITS", "UNTIL"]
    assert lines[1].split() == [rule_id, "*", "/metadata/instance", "410,200", "0/2", "-"]
    assert lines[2].split()[1:5] == ["demo-vm", "*", "503", "Retry-After"]
    assert server.get(NAME).status_code == 410
    assert server.cli("faults", "remove", rule_id).stdout.strip() == f"{rule_id}: removed"
    assert server.cli("faults", "clear").stdout.strip() == "removed 1 rule(s)"
    bad = server.cli("faults", "add", "--status", "500", "--close")
    assert bad.returncode == 1
    assert "give exactly one of status, sequence, latency, close, hang" in bad.stderr
    boot = server.cli("faults", "boot", "--seconds", "0.5")
    assert boot.returncode == 0 and "every call gets 410 until" in boot.stdout


def test_faults_show_in_access_log_metrics_and_journal(server: RunningServer) -> None:
    add(server, id="logged", path="/metadata/instance/compute/name", status=503, times=1)
    add(server, id="dropped", path="/metadata/instance/compute/name", close=True, times=1)
    assert server.get(NAME).status_code == 503
    with pytest.raises(httpx.RemoteProtocolError):
        server.get(NAME)
    metrics = server.admin("GET", "/metrics").text
    assert 'openimds_faults_fired_total{rule="logged"} 1.0' in metrics
    assert 'route="hook:logged"' in metrics
    journal = server.admin("GET", "/requests?limit=2").json()["requests"]
    assert [(e["status"], e.get("fault")) for e in journal] == [(503, "logged"), (0, "dropped")]
    deadline = time.monotonic() + 5
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline and len(lines) < 2:
        time.sleep(0.2)  # the access log is written once a second
        lines = [
            json.loads(line)
            for line in server.output.splitlines()
            if '"event":"access"' in line and ('"logged"' in line or '"dropped"' in line)
        ]
    assert [(line["status"], line["rule"]) for line in lines] == [(503, "logged"), (0, "dropped")]


def test_rules_and_boot_window_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "faults.yaml"
    config.write_text(
        "faults:\n"
        "  boot_seconds: 1\n"
        "  rules:\n"
        "    - {id: tagged, path: /metadata/instance/compute/tags, status: 500}\n"
    )
    running = start_server(tmp_path, config=str(config))
    try:
        assert running.get(NAME).status_code == 410
        time.sleep(1.1)
        assert running.get(NAME).status_code == 200
        tags = "/metadata/instance/compute/tags?api-version=2021-02-01&format=text"
        assert running.get(tags).status_code == 500
    finally:
        running.stop()


def test_a_bad_rule_in_the_config_file_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "faults.yaml"
    config.write_text("faults:\n  rules:\n    - {status: 500, close: true}\n")
    done = run_openimds("config", "check", "--config", str(config))
    assert done.returncode == 2
    assert "faults.yaml: faults.rules[0]: " in done.stderr
    assert "give exactly one of status, sequence, latency, close, hang" in done.stderr


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"vm": "nobody", "status": 500}, "vm: no VM is named 'nobody'"),
        ({"path": "no-slash", "status": 500}, "path: a request path starts with '/'"),
    ],
)
def test_a_rule_that_could_never_fire_is_refused(
    server: RunningServer, rule: dict[str, object], expected: str
) -> None:
    answer = server.admin("POST", "/faults", json=rule)
    assert answer.status_code == 400
    assert expected in answer.json()["error"]
    assert server.admin("GET", "/faults").json()["rules"] == []


def test_the_cli_refuses_a_rule_for_an_unknown_vm_or_a_path_without_a_slash(
    server: RunningServer,
) -> None:
    for flags, expected in (
        (("--vm", "nobody"), "no VM is named 'nobody'"),
        (("--path", "no-slash"), "a request path starts with '/'"),
    ):
        result = server.cli("faults", "add", *flags, "--status", "500")
        assert result.returncode == 1
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
    known = server.cli("faults", "add", "--vm", "demo-vm", "--path", "*token", "--status", "500")
    assert known.returncode == 0, known.stderr
