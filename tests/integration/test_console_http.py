"""The console over real sockets, without a browser: the login exchange, the cookie's
flags, CSRF and cross-site refusals, the security headers, and that a form really changes
the fleet through the admin API. (tests/clients/console drives it with Chromium.)"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer, server_fixture, start_server

server = server_fixture("server")


_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def signed_in(server: RunningServer) -> tuple[httpx.Client, str]:
    """A client with a console session, and the session's CSRF token."""
    client = httpx.Client(base_url=server.admin_url)
    _clients.append(client)
    answer = client.post("/console/login", data={"token": server.admin_token})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    page = client.get("/console/keys")
    assert page.status_code == 200
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return client, found.group(1)


def test_pages_need_a_session_and_send_to_the_login_form(server: RunningServer) -> None:
    answer = httpx.get(server.admin_url + "/console/events")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/events"
    login = httpx.get(server.admin_url + "/console/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    # The bearer token alone does not open the console: it is for scripts.
    scripted = server.admin("GET", "/console/events")
    assert scripted.status_code == 303


def test_the_session_cookie_is_httponly_samesite_strict_and_scoped(server: RunningServer) -> None:
    answer = httpx.post(server.admin_url + "/console/login", data={"token": server.admin_token})
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("openimds_console=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags  # plain HTTP on loopback; set under admin TLS
    assert server.admin_token not in cookie


def test_a_wrong_token_is_refused_and_counted(server: RunningServer) -> None:
    answer = httpx.post(server.admin_url + "/console/login", data={"token": "wrong" * 5})
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert "That is not the admin token." in answer.text


def test_a_login_posted_from_another_site_is_refused(server: RunningServer) -> None:
    answer = httpx.post(
        server.admin_url + "/console/login",
        data={"token": server.admin_token},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_changes_without_or_with_a_forged_csrf_token_change_nothing(server: RunningServer) -> None:
    client, csrf = signed_in(server)
    before = server.admin("GET", "/faults").json()["rules"]
    for headers, data in (
        ({}, {"path": "/metadata/*", "status": "500"}),
        ({"X-CSRF-Token": "forged"}, {"path": "/metadata/*", "status": "500"}),
        ({}, {"path": "/metadata/*", "status": "500", "csrf": csrf[:-2] + "xx"}),
    ):
        answer = client.post("/console/faults", data=data, headers=headers)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    assert server.admin("GET", "/faults").json()["rules"] == before
    # Another session's token does not fit either.
    _, other = signed_in(server)
    assert client.post("/console/faults/clear", data={"csrf": other}).status_code == 403


def test_a_form_changes_the_fleet_through_the_admin_api(server: RunningServer) -> None:
    client, csrf = signed_in(server)
    answer = client.post(
        "/console/faults",
        data={"csrf": csrf, "path": "/metadata/versions", "kind": "status", "status": "503"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/faults"
    rules = server.admin("GET", "/faults").json()["rules"]
    assert [(r["path"], r["status"]) for r in rules] == [("/metadata/versions", 503)]
    assert server.get("/metadata/versions").status_code == 503
    page = client.get("/console/faults")
    assert "Fault rule added." in page.text and "/metadata/versions" in page.text
    client.post("/console/faults/clear", data={"csrf": csrf})
    assert server.admin("GET", "/faults").json()["rules"] == []


def test_an_api_refusal_is_shown_in_the_apis_words(server: RunningServer) -> None:
    client, csrf = signed_in(server)
    client.post("/console/events", data={"csrf": csrf, "type": "Reboot", "target": "vm:nobody"})
    page = client.get("/console/events")
    expected = server.admin("POST", "/events", json={"type": "Reboot", "target": "vm:nobody"})
    assert expected.status_code == 400
    assert expected.json()["error"].replace("'", "&#39;") in page.text


def test_every_console_answer_carries_a_strict_policy(server: RunningServer) -> None:
    client, _ = signed_in(server)
    for path in ("/console/keys", "/console/faults", "/console/events", "/console/login"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


def test_assets_are_served_from_the_package(server: RunningServer) -> None:
    for asset in ("console.js", "console.css", "vendor/htmx-2.0.11.min.js"):
        answer = httpx.get(f"{server.admin_url}/console/static/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 1000
    page = httpx.get(server.admin_url + "/console/login").text
    assert "http://" not in page.replace(server.admin_url, "") or "https://" not in page


def test_logging_out_ends_the_session(server: RunningServer) -> None:
    client, csrf = signed_in(server)
    answer = client.post("/console/logout", data={"csrf": csrf})
    assert answer.status_code == 303
    assert client.get("/console/keys").status_code == 303


def test_the_console_is_not_on_the_metadata_listener(server: RunningServer) -> None:
    for path in ("/console/", "/console/login", "/console/static/console.js"):
        answer = server.get(path)
        assert answer.status_code in (400, 404)
        assert "openimds console" not in answer.text


def test_the_console_can_be_turned_off(tmp_path: Path) -> None:
    config = tmp_path / "off.yaml"
    config.write_text("admin:\n  console: false\n")
    off = start_server(tmp_path, config=str(config))
    try:
        assert off.admin("GET", "/console/login").status_code == 404
        assert httpx.get(off.admin_url + "/console/login").status_code == 401
    finally:
        off.stop()


def _next_event(lines: Iterator[str], name: str, timeout: float) -> str:
    """The data of the next SSE event called `name` (lines of one event joined)."""
    deadline = time.monotonic() + timeout
    current: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith("event: "):
            current, data = line[7:], []
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and current == name:
            return "\n".join(data)
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no {name} event within {timeout} s")


def test_the_timeline_is_pushed_when_an_event_changes(server: RunningServer) -> None:
    client, _ = signed_in(server)
    with client.stream("GET", "/console/events/stream", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        first = _next_event(lines, "timeline", 5)
        assert "Freeze" not in first
        server.admin("POST", "/events", json={"type": "Freeze", "notBefore": "+1h"})
        pushed = _next_event(lines, "timeline", 5)
        assert "Freeze" in pushed and 'data-state="Scheduled"' in pushed
    for event in server.admin("GET", "/events").json()["events"]:
        server.admin("POST", f"/events/{event['eventId']}/cancel")


def test_an_open_stream_does_not_hold_a_stop_up(tmp_path: Path) -> None:
    own = start_server(tmp_path)
    client, _ = signed_in(own)
    with client.stream("GET", "/console/events/stream", timeout=10) as stream:
        _next_event(stream.iter_lines(), "timeline", 5)
        started = time.monotonic()
        own.process.send_signal(signal.SIGTERM)
        own.process.wait(timeout=10)
        assert time.monotonic() - started < 3
    assert own.process.returncode == 0


def test_approving_on_a_vms_behalf_counts_as_its_own_approval(server: RunningServer) -> None:
    scheduled = server.admin("POST", "/events", json={"type": "Reboot", "notBefore": "+1h"})
    event_id = scheduled.json()["events"][0]["eventId"]
    events = "/metadata/scheduledevents?api-version=2020-07-01"
    assert server.get(events).json()["Events"][0]["EventStatus"] == "Scheduled"
    refused = [
        server.admin("POST", f"/events/{event_id}/approve", json={}),
        server.admin("POST", f"/events/{event_id}/approve", json={"vm": "nobody"}),
        server.admin("POST", "/events/unknown/approve", json={"vm": "demo-vm"}),
    ]
    assert [r.status_code for r in refused] == [400, 404, 404]
    client, csrf = signed_in(server)
    answer = client.post(
        f"/console/events/{event_id}/approve", data={"csrf": csrf, "vm": "demo-vm"}
    )
    assert answer.status_code == 303
    event = server.admin("GET", f"/events/{event_id}").json()
    assert event["state"] == "Started"
    assert [a["vm"] for a in event["approvals"]] == ["demo-vm"]
    assert server.get(events).json()["Events"][0]["EventStatus"] == "Started"
    server.admin("POST", f"/events/{event_id}/complete")


def test_a_form_number_that_is_not_one_gets_the_apis_refusal(server: RunningServer) -> None:
    client, csrf = signed_in(server)
    for field, kind in (("status", "status"), ("latency", "latency"), ("times", "status")):
        data = {"csrf": csrf, "path": "/metadata/*", "kind": kind, field: "soon"}
        answer = client.post("/console/faults", data=data)
        assert answer.status_code == 303  # back to the page, not a 500
        page = client.get("/console/faults").text
        assert 'class="flash error"' in page and field in page
    assert server.admin("GET", "/faults").json()["rules"] == []
    assert "Traceback" not in server.output


def _section(page: str, heading_id: str) -> str:
    """The HTML from a heading to the next one."""
    start = page.index(f'id="{heading_id}"')
    end = page.find("<h2", start)
    return page[start : end if end != -1 else None]


def test_a_vms_page_shows_its_load_balancer_or_none(server: RunningServer) -> None:
    client, _ = signed_in(server)
    shown = _section(client.get("/console/vms/demo-vm").text, "lb-h")
    assert "20.61.15.42" in shown
    assert "api-version" not in shown and "answers 400" not in shown
    added = server.admin("POST", "/vms", json={"name": "bare", "addresses": ["127.0.0.9"]})
    assert added.status_code == 200
    try:
        bare = _section(client.get("/console/vms/bare").text, "lb-h")
        assert "<p>none</p>" in bare
        assert "answers" not in bare
    finally:
        assert server.admin("DELETE", "/vms/bare").status_code == 200


def test_an_unknown_vms_page_is_a_404_page(server: RunningServer) -> None:
    client, _ = signed_in(server)
    page = client.get("/console/vms/nobody")
    assert page.status_code == 404
    assert "no VM named nobody" in page.text
    assert page.headers["content-type"].startswith("text/html")


def test_a_negative_latency_is_refused_in_one_sentence(server: RunningServer) -> None:
    client, csrf = signed_in(server)
    client.post("/console/faults", data={"csrf": csrf, "kind": "latency", "latency": "-1"})
    page = client.get("/console/faults")
    assert "expected seconds from 0 to 86400, or [low, high] of them" in page.text
    assert "constrained-float" not in page.text and "valid tuple" not in page.text
