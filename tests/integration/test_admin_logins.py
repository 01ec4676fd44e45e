"""Refused admin tokens over real sockets: past the limit, that source address gets 429
with Retry-After; another address (127.0.0.2, loopback too) is served as before."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server import start_server


def _get(url: str, token: str, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport) as client:
        return client.get(url + "/vms", headers={"Authorization": f"Bearer {token}"})


def test_refused_tokens_lock_out_their_source_only(tmp_path: Path) -> None:
    server = start_server(tmp_path, args=["--log-level", "info"])
    try:
        wrong = "not-the-token-000000000"
        statuses = [_get(server.admin_url, wrong, "127.0.0.1").status_code for _ in range(11)]
        assert statuses == [401] * 10 + [429]
        locked = _get(server.admin_url, wrong, "127.0.0.1")
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert "too many refused tokens from 127.0.0.1" in locked.json()["error"]
        assert _get(server.admin_url, server.admin_token, "127.0.0.1").status_code == 200
        assert _get(server.admin_url, server.admin_token, "127.0.0.2").status_code == 200
        assert server.get("/metadata/instance?api-version=2021-02-01").status_code == 200
        assert server.admin_token not in server.output and wrong not in server.output
    finally:
        server.stop()


def test_requests_without_a_token_guess_nothing_and_lock_nobody_out(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        for _ in range(15):  # a browser's /favicon.ico, a probe without credentials
            assert httpx.get(server.admin_url + "/favicon.ico").status_code == 401
        assert _get(server.admin_url, server.admin_token, "127.0.0.1").status_code == 200
    finally:
        server.stop()


def test_the_console_login_and_the_api_share_one_count(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        login = server.admin_url + "/console/login"
        statuses = [httpx.post(login, data={"token": "wrong" * 5}).status_code for _ in range(10)]
        assert statuses == [401] * 10
        # The console's door used the tries: the API's door is shut for wrong tokens too...
        assert _get(server.admin_url, "wrong" * 5, "127.0.0.1").status_code == 429
        assert httpx.post(login, data={"token": "wrong" * 5}).status_code == 429
        # ...while the right one works at both from this machine.
        assert _get(server.admin_url, server.admin_token, "127.0.0.1").status_code == 200
        assert httpx.post(login, data={"token": server.admin_token}).status_code == 303
    finally:
        server.stop()


def test_the_unix_socket_gets_in_with_the_right_token_past_the_limit(tmp_path: Path) -> None:
    sock = tmp_path / "admin.sock"
    server = start_server(tmp_path, args=["--admin-listen", f"unix:{sock}"])
    try:
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, base_url="http://admin") as client:

            def status(token: str) -> int:
                headers = {"Authorization": f"Bearer {token}"}
                return client.get("/vms", headers=headers).status_code

            assert [status("wrong" * 5) for _ in range(11)] == [401] * 10 + [429]
            assert status(server.admin_token) == 200
    finally:
        server.stop()
