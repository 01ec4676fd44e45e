"""The server as its toughest user meets it: every admin route behind the token and never
on the metadata listener, no secret in the log, no 500 for odd requests, event times that
cannot be rendered refused before they are stored, private state files."""

from __future__ import annotations

import base64
import json
import random
import re
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from openimds.config import load_config
from openimds.features import ALL
from openimds.runtime import build_runtime
from openimds.server import admin_app
from tests.support.cli import run_openimds
from tests.support.server import RunningServer, server_fixture, start_server


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, mounted ones (the console's) included."""
    for route in routes:
        if isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                yield "GET", f"{prefix}{route.path}/console.js"
            else:
                yield from _routes(route.routes, prefix + route.path)
            continue
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield method, prefix + route.path


def _admin_operations() -> list[tuple[str, str, bool]]:
    """(method, path, public) of every admin route a full server has, read from the app
    itself, so a route added later is covered without editing this test."""
    config = load_config(None, env={"OPENIMDS_STATE": ":memory:"})
    runtime = build_runtime(config, ALL)
    try:
        app = admin_app(runtime)
        public = {
            "/healthz",
            "/readyz",
            *(p for routes in runtime.admin for p in routes.public_paths()),
        }
        return [
            (method, re.sub(r"{[^}]+}", "x", path), path in public)
            for method, path in _routes(app.routes)
        ]
    finally:
        runtime.close()


OPERATIONS = _admin_operations()


# Every route is tried with refused tokens: more than a source may send per minute.
server = server_fixture("server", env={"OPENIMDS_ADMIN_LOGIN_FAILURES": "0"})


def test_the_route_list_is_complete() -> None:
    paths = {path for _, path, _ in OPERATIONS}
    assert {"/vms", "/events", "/identity/keys/rotate", "/attested/ca"} <= paths
    assert {"/console/fleet", "/console/events/x/x", "/console/static/console.js"} <= paths
    assert {p for _, p, public in OPERATIONS if public} >= {"/healthz", "/discovery/keys"}


@pytest.mark.parametrize(("method", "path", "public"), OPERATIONS)
def test_every_admin_route_needs_the_token_and_stays_off_the_metadata_port(
    server: RunningServer, method: str, path: str, public: bool
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-token-0123456789"}):
        answer = httpx.request(method, server.admin_url + path, headers=headers)
        if path.startswith("/console"):
            # The console's own door: without a session, the login form, its assets, a
            # redirect to the form, or a refusal; never a page of the fleet.
            assert answer.status_code in (200, 303, 401, 403), (method, path)
            if answer.status_code == 200:
                assert path in ("/console/login", "/console/static/console.js"), path
        elif public:
            assert answer.status_code != 401
        else:
            assert answer.status_code == 401, (method, path)
    headers = {"Metadata": "true", "Authorization": f"Bearer {server.admin_token}"}
    on_metadata = httpx.request(method, server.metadata_url + path, headers=headers)
    assert on_metadata.status_code in (400, 404, 405)
    assert "error" in on_metadata.json()


def test_no_token_reaches_the_log_at_debug_level(tmp_path: Path) -> None:
    server = start_server(tmp_path, args=["--log-level", "debug"])
    token = server.get(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    )
    assert token.status_code == 200
    access_token = token.json()["access_token"]
    assert server.admin("GET", "/identity/keys").status_code == 200
    assert server.admin("GET", "/vms").status_code == 200
    server.stop()  # flushes the access log
    log = server.output
    assert '"event":"access"' in log  # the log is on, and saw the requests
    assert access_token not in log
    assert access_token.split(".")[2] not in log  # not even the signature alone
    assert server.admin_token not in log


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


PATHS = [
    "/metadata/instance",
    "/metadata/instance/compute/tagsList/99999999999999999999",
    "/metadata/instance/network/interface/-1/ipv4",
    "/metadata/attested/document",
    "/metadata/identity/oauth2/token",
    "/metadata/identity/info",
    "/metadata/scheduledevents",
    "/metadata/loadbalancer",
    "/metadata/versions",
    "/metadata//instance/%00/%ff",
    "/metadata/instance/../../etc/passwd",
    "*",
    "/vms",
    "/events/x/start",
    "/identity/keys/rotate",
]
QUERIES = [
    "",
    "?api-version=2021-02-01",
    "?api-version=2021-02-01&format=text&format=json",
    "?api-version=%ff&&==&",
    "?api-version=2018-02-01&resource=x&client_id=zz&object_id=yy&msi_res_id=%00",
    "?api-version=2020-09-01&nonce=" + "9" * 300,
    "?api-version=2021-02-01&" + "a=b&" * 300,
]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW"]
HEADERS = [
    b"Metadata: true\r\n",
    b"Metadata: TRUE\r\nMetadata: false\r\n",
    b"",
    b"Metadata: true\r\nX-Forwarded-For: 10.9.9.9\r\n",
    b"Metadata: \xff\xfe\r\n",
    b"Metadata: true\r\nContent-Type: application/json\r\n",
]
BODIES = [b"", b"{}", b"\x00\xff" * 8, b'{"StartRequests": [{"EventId": 5}]}', b"[1"]


def test_odd_requests_never_get_a_500_or_a_traceback(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    try:
        port = int(running.metadata_url.rsplit(":", 1)[1])
        rng = random.Random(7)
        statuses: set[bytes] = set()
        for _ in range(300):
            body = rng.choice(BODIES)
            request = (
                (
                    f"{rng.choice(METHODS)} {rng.choice(PATHS)}{rng.choice(QUERIES)} HTTP/1.1\r\n"
                    f"Host: 169.254.169.254\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n"
                ).encode()
                + rng.choice(HEADERS)
                + b"\r\n"
                + body
            )
            answer = _raw(port, request)
            assert answer.startswith(b"HTTP/1.1 "), request
            status = answer[9:12]
            assert not status.startswith(b"5"), (request, answer[:300])
            statuses.add(status)
        assert {b"200", b"400", b"404", b"405"} <= statuses
    finally:
        running.stop()
    assert "Traceback" not in running.output
    assert '"level": "error"' not in running.output


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Reboot", "notBefore": 1e300},
        {"type": "Reboot", "notBefore": "+99999999999d"},
        {"type": "Reboot", "at": -1e12},
        {"type": "Freeze", "durationInSeconds": 10**20},
        {"type": "Freeze", "completeAfter": 1e300},
        {"type": "Freeze", "notBefore": "9999-12-31T23:59:59Z"},
    ],
)
def test_event_times_beyond_rendering_are_refused(server: RunningServer, body: object) -> None:
    answer = server.admin("POST", "/events", json=body)
    assert answer.status_code == 400
    assert "outside 1970-01-01..9999-01-01" in answer.json()["error"]
    assert server.admin("GET", "/events").json()["events"] == []
    events = server.get("/metadata/scheduledevents?api-version=2020-07-01")
    assert events.status_code == 200


def test_state_directory_and_file_are_private(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state.db"
    running = start_server(tmp_path, state_path=str(state))
    try:
        assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
    finally:
        running.stop()


def test_config_inf_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "inf.yaml"
    config.write_text("events:\n  notice: {reboot: .inf}\n")
    result = run_openimds("serve", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: events.notice.reboot: expected a finite number, got inf" in result.stderr
    assert "Traceback" not in result.stderr


def test_deeply_nested_json_is_a_400_on_both_listeners(server: RunningServer) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    answer = httpx.post(
        server.metadata_url + "/metadata/scheduledevents?api-version=2020-07-01",
        content=b'{"StartRequests": ' + deep + b"}",
        headers={"Metadata": "true"},
    )
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["error"]
    for path in ("/events", "/events/scenario"):
        answer = server.admin("POST", path, content=deep)
        assert answer.status_code == 400
        assert answer.json() == {"error": "the body is nested too deeply"}
    assert "Traceback" not in server.output


Read = Callable[[str], tuple[httpx.Response, str]]


@pytest.fixture
def read(server: RunningServer) -> Iterator[Read]:
    """A GET with the token (a console page: with a console session): the answer and its
    body. An event stream never ends; only its head is read (its events are journal
    entries, redacted as GET /requests, or pages read the same way)."""
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client() as plain, httpx.Client(follow_redirects=True) as console:
        login = {"token": server.admin_token}
        assert console.post(server.admin_url + "/console/login", data=login).status_code == 200

        def get(path: str) -> tuple[httpx.Response, str]:
            client = console if path.startswith("/console") else plain
            with client.stream("GET", server.admin_url + path, headers=headers) as answer:
                if answer.headers.get("content-type", "").startswith("text/event-stream"):
                    return answer, ""
                answer.read()
                return answer, answer.text

        yield get


def test_no_admin_answer_holds_a_private_key(server: RunningServer, read: Read) -> None:
    assert server.admin("POST", "/identity/keys/rotate").status_code == 200
    bodies = []
    for method, path, _ in OPERATIONS:
        if method == "GET":
            answer, body = read(path)
            assert answer.status_code in (200, 404), path
            bodies.append(body)
    text = "\n".join(bodies)
    assert "BEGIN CERTIFICATE" in text and '"kty"' in text  # certificates and JWKs were seen
    assert "PRIVATE KEY" not in text
    for jwk in server.admin("GET", "/discovery/keys").json()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


# The one admin answer that carries secrets: the token sources' IDENTITY_HEADER /
# MSI_SECRET, for `openimds env` (docs/identity.md). Any other route holding a "secret"
# field fails below; this one must never be cached.
SECRET_BEARING = {"/identity/hosts"}


def test_only_the_known_route_bears_secrets_and_it_is_never_cached(read: Read) -> None:
    for method, path, _ in OPERATIONS:
        if method != "GET":
            continue
        answer, body = read(path)
        if path in SECRET_BEARING:
            assert answer.headers["Cache-Control"] == "no-store"
        else:
            assert '"secret"' not in body, path


def test_a_rotated_key_and_the_ca_survive_sigkill(tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    first = start_server(tmp_path, state_path=state)
    try:
        rotated = first.admin("POST", "/identity/keys/rotate").json()["kid"]
        root = first.admin("GET", "/attested/ca").json()["root"]
        token = first.get(
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
        ).json()["access_token"]
    finally:
        first.stop(signal.SIGKILL)
    second = start_server(tmp_path, state_path=state)
    try:
        keys = second.admin("GET", "/identity/keys").json()["keys"]
        assert [k["kid"] for k in keys if k["active"]] == [rotated]
        assert second.admin("GET", "/attested/ca").json()["root"] == root
        # A token issued before the kill still verifies against the published keys.
        published = {k["kid"] for k in second.admin("GET", "/discovery/keys").json()["keys"]}
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["kid"] in published
    finally:
        second.stop()
