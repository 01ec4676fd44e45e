"""What the admin commands print when the server or a file says no: one line in the
user's words, no Python reprs, no parser internals."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_openimds
from tests.support.server import RunningServer, start_server


def stderr_of(server: RunningServer, *args: str) -> tuple[int, str]:
    result = server.cli(*args)
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, result.stderr


def test_an_admin_api_error_is_its_text_and_status(live: RunningServer) -> None:
    assert stderr_of(live, "events", "cancel", "nosuch") == (
        1,
        "openimds: no live event nosuch (404)\n",
    )
    assert stderr_of(live, "events", "schedule", "Reboot", "--vm", "nosuch") == (
        1,
        "openimds: target vm:nosuch matches no VM (400)\n",
    )


def test_a_refused_scenario_names_the_field(live: RunningServer, tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("events:\n  - type: Reboot\n    notbefore: +5m\n")
    code, err = stderr_of(live, "events", "load", str(path))
    assert code == 1
    assert err.startswith(
        "openimds: scenario event 0: notbefore: unknown field 'notbefore' "
        "(did you mean 'notBefore'?)"
    )
    assert err.endswith(" (400)\n")


def test_broken_yaml_is_one_line_with_its_position(live: RunningServer, tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("events:\n  - type: Reboot\n   at: [now\n")
    code, err = stderr_of(live, "events", "load", str(path))
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"openimds: {path}:3:")
    assert "not valid YAML or JSON: " in err


def test_a_negative_latency_is_one_plain_sentence(live: RunningServer) -> None:
    code, err = stderr_of(live, "faults", "add", "--latency", "-1")
    assert code == 2  # refused by the flag, before the API is asked
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "'--latency'" in errors[0], err
    assert "constrained-float" not in err and "valid tuple" not in err
    # The API words the same refusal in one plain sentence too (the console shows it).
    answer = live.admin("POST", "/faults", json={"latency": -1})
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "the rule: latency: expected seconds from 0 to 86400, or [low, high] of them; got -1"
    )


def test_a_url_for_a_listen_address_gets_the_host_port_message() -> None:
    result = run_openimds("vm", "list", "--admin-listen", "http://127.0.0.1:18181")
    assert result.returncode == 2
    assert "admin.listen: expected HOST:PORT (e.g. 127.0.0.1:8080) without a scheme" in (
        result.stderr
    )


FLEET = """
vms:
  - {name: a, addresses: [127.0.0.1]}
  - {name: b, addresses: [127.0.0.2]}
"""


def test_in_a_fleet_a_drill_names_the_vm_flag_and_an_approval_the_unknown_vm(
    tmp_path: Path,
) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(FLEET)
    server = start_server(tmp_path, config=str(config))
    try:
        code, err = stderr_of(server, "events", "drill", "spot-eviction", "--dev")
        assert (code, err) == (
            2,
            "openimds: --vm: required when the server has several VMs (409)\n",
        )
        event = server.admin("POST", "/events", json={"type": "Reboot", "target": {"vm": "a"}})
        assert event.status_code == 201, event.text
        event_id = event.json()["events"][0]["eventId"]
        answer = server.admin("POST", f"/events/{event_id}/approve", json={"vm": "nobody"})
        assert (answer.status_code, answer.json()) == (404, {"error": "no VM named nobody"})
    finally:
        server.stop()
