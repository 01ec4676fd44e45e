"""What the admin commands print when the server or a file says no: one line in the
user's words, no Python reprs, no parser internals."""

from __future__ import annotations

from pathlib import Path

from tests.support.server import RunningServer


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
