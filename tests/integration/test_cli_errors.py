"""Commands that reach a running server, used wrongly: a clear message, a non-zero exit,
never a traceback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.support.cli import run_openimds
from tests.support.server import RunningServer


def cli(
    server_admin: str, *args: str, token: str = "test-admin-token-0123456789"
) -> tuple[int, str]:
    env = {
        "OPENIMDS_ADMIN_LISTEN": server_admin.removeprefix("http://"),
        "OPENIMDS_ADMIN_TOKEN": token,
    }
    result = run_openimds(*args, env=env)
    assert "Traceback" not in result.stdout + result.stderr
    return result.returncode, result.stderr


def test_events_load_of_a_binary_file(live: RunningServer, tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    code, err = cli(live.admin_url, "events", "load", str(path))
    assert code == 2
    assert err.startswith(f"openimds: {path}: ")


def test_ca_export_into_a_directory_that_cannot_be_made(
    live: RunningServer, tmp_path: Path
) -> None:
    (tmp_path / "plain-file").write_text("x")
    target = tmp_path / "plain-file" / "certs"
    code, err = cli(live.admin_url, "ca", "export", str(target))
    assert code == 1
    assert err == f"openimds: cannot write to {target}: Not a directory\n"


def test_an_event_id_stays_one_path_segment(live: RunningServer) -> None:
    code, err = cli(live.admin_url, "events", "cancel", "x?y=1")
    assert code == 1
    assert "no live event x?y=1" in err


def test_a_wrong_token_and_an_unreachable_server(live: RunningServer) -> None:
    code, err = cli(live.admin_url, "keys", "list", token="wrong-token-0123456789")
    assert code == 1
    assert "the admin API refused the token: pass --token" in err
    code, err = cli("127.0.0.1:9", "events", "list")
    assert code == 1
    assert "cannot reach the admin API at 127.0.0.1:9" in err


class _NotTheAdminApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>some other service</html>")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_service() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _NotTheAdminApi)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("command", [("events", "list"), ("keys", "list"), ("ca", "export", "d")])
def test_something_else_on_the_admin_address(other_service: str, command: tuple[str, ...]) -> None:
    code, err = cli(other_service, *command)
    assert code == 1
    assert err == f"openimds: {other_service} did not answer as the openimds admin API\n"
