"""`config check` runs every check `serve` runs before it opens a socket, without opening
one and without creating a state store: what `check` calls ok, `serve` starts with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openimds.crypto.ca import issue_root, pem

SCENARIO = '[{"type": "Freeze", "eventId": "f-1", "notBefore": 600}]'


def openimds(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    base["OPENIMDS_ADMIN_TOKEN"] = "test-admin-token-0123456789"
    command = [sys.executable, "-m", "openimds", *args]
    try:
        return subprocess.run(
            command, capture_output=True, text=True, env={**base, **env}, timeout=20, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"kept running: {exc.stdout!r} {exc.stderr!r}") from None


def serve(config: Path | None, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    listen = ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    return openimds("serve", *listen, *(["--config", str(config)] if config else []), env=env)


def check(config: Path | None, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return openimds("config", "check", *(["--config", str(config)] if config else []), env=env)


def _refused_alike(config: Path | None, env: dict[str, str], expected: str) -> None:
    """`check` and `serve` refuse with the same one message and exit status 2."""
    checked, served = check(config, env), serve(config, env)
    for result in (checked, served):
        assert result.returncode == 2, result.stdout + result.stderr
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
    assert checked.stdout == served.stdout == ""
    assert checked.stderr == served.stderr


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    return {"OPENIMDS_STATE": str(tmp_path / "new" / "state.db")}


def test_missing_scenario_file(tmp_path: Path, state: dict[str, str]) -> None:
    config = tmp_path / "vm.yaml"
    config.write_text(f"events:\n  scenario: {tmp_path / 'absent.yaml'}\n")
    expected = f"events.scenario {tmp_path / 'absent.yaml'}: cannot read: No such file"
    _refused_alike(config, state, expected)


def test_scenario_that_cannot_become_events(tmp_path: Path, state: dict[str, str]) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text('[{"type": "Explode", "notBefore": 60}]')
    config = tmp_path / "vm.yaml"
    config.write_text(f"events:\n  scenario: {scenario}\n")
    _refused_alike(config, state, f"events.scenario {scenario}: ")


@pytest.mark.parametrize("missing", ["ca_cert_file", "ca_key_file"])
def test_missing_ca_files(tmp_path: Path, state: dict[str, str], missing: str) -> None:
    pair = issue_root(datetime.now(UTC))  # a real CA, one of its two files then absent
    files = {"ca_cert_file": tmp_path / "ca.pem", "ca_key_file": tmp_path / "ca.key"}
    files["ca_cert_file"].write_text(pem(pair.cert))
    files["ca_key_file"].write_text(json.loads(pair.to_json())["key"])
    files[missing].unlink()
    config = tmp_path / "vm.yaml"
    config.write_text(
        f"attested:\n  ca_cert_file: {files['ca_cert_file']}\n"
        f"  ca_key_file: {files['ca_key_file']}\n"
    )
    _refused_alike(config, state, f"attested data: cannot read {files[missing]}")


def test_empty_state_variable(tmp_path: Path) -> None:
    result = check(None, {"OPENIMDS_STATE": ""})
    assert result.returncode == 2
    assert "environment variable OPENIMDS_STATE: state.path" in result.stderr
    _refused_alike(None, {"OPENIMDS_STATE": ""}, "OPENIMDS_STATE")


def test_state_path_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    state = tmp_path / "plain-file" / "state.db"
    _refused_alike(None, {"OPENIMDS_STATE": str(state)}, str(state))


def test_state_path_that_is_a_directory(tmp_path: Path) -> None:
    _refused_alike(None, {"OPENIMDS_STATE": str(tmp_path)}, str(tmp_path))


def test_malformed_state_url(tmp_path: Path) -> None:
    _refused_alike(None, {"OPENIMDS_STATE": "sqlite://relative.db"}, "three slashes")


@pytest.mark.parametrize(
    ("url", "scheme"), [("mysql://x@y/z", "mysql"), ("postgresq://db/openimds", "postgresq")]
)
def test_an_unknown_state_scheme_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, scheme: str
) -> None:
    monkeypatch.chdir(tmp_path)  # where a mistaken SQLite file would appear
    _refused_alike(None, {"OPENIMDS_STATE": url}, f"unknown state URL scheme {scheme!r}")
    assert list(tmp_path.iterdir()) == []


def test_a_good_config_is_checked_without_creating_anything(
    tmp_path: Path, state: dict[str, str]
) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(SCENARIO)
    config = tmp_path / "vm.yaml"
    config.write_text(f"events:\n  scenario: {scenario}\n")
    result = check(config, state)
    assert (result.returncode, result.stdout) == (0, "ok: 1 VM(s)\n"), result.stderr
    assert not (tmp_path / "new").exists()


def test_the_state_flag_is_checked_as_serve_checks_it(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("x")
    state = str(tmp_path / "plain-file" / "state.db")
    checked = openimds("config", "check", "--state", state, env={})
    assert checked.returncode == 2 and state in checked.stderr, checked.stderr
    assert openimds("config", "check", "--state", "memory:", env={}).returncode == 0


def test_help_names_every_state_form_and_the_json_lines() -> None:
    for command in (("serve",), ("config", "check")):
        text = " ".join(openimds(*command, "--help", env={}).stdout.split())
        assert "sqlite:///PATH" in text and "postgresql://" in text, text
        assert "memory: (nothing kept)" in text and ":memory:" not in text, text
    shown = " ".join(openimds("requests", "--help", env={}).stdout.split())
    assert "one JSON object per line" in shown, shown
