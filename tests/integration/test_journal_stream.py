"""The request journal as Server-Sent Events over real sockets: a request shows on an
open stream within a second, as GET /requests gives it; filters (on the stream and on
GET /requests); resuming with Last-Event-ID or `after`; a client that hangs up ends its
stream; an open stream does not hold up a stop."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.support.server import RunningServer, server_fixture, start_server
from tests.support.sse import EventReader

NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
STREAMS = re.compile(r"^openimds_journal_streams (\S+)$", re.MULTILINE)


server = server_fixture("server")


def _open(server: RunningServer, query: str = "", headers: str = "") -> EventReader:
    reader = EventReader(server.admin_url, server.admin_token, "/requests/stream" + query, headers)
    assert reader.head.status == 200, reader.head
    return reader


def _open_streams(server: RunningServer, expected: int) -> int:
    """The count of open streams in /metrics, once it is `expected` or after 2 s."""
    deadline = time.monotonic() + 2
    while True:
        match = STREAMS.search(server.admin("GET", "/metrics").text)
        assert match is not None
        count = int(float(match.group(1)))
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_a_request_shows_on_an_open_stream_within_a_second(server: RunningServer) -> None:
    with _open(server) as reader:
        assert reader.head.header("content-type") == "text/event-stream; charset=utf-8"
        assert reader.head.header("cache-control") == "no-store"
        asked = time.monotonic()
        assert server.get(NAME, headers={"X-Trace": "live"}).status_code == 200
        event = reader.event(timeout=1.0)
        assert event is not None and time.monotonic() - asked < 1.0
    entry = event.entry
    assert event.field("event") == "request"
    assert event.field("id") == str(entry["seq"])
    assert (entry["path"], entry["status"], entry["vm"]) == (
        "/metadata/instance/compute/name",
        200,
        "demo-vm",
    )
    assert entry["headers"]["X-Trace"] == "live"
    # The data is the entry exactly as GET /requests writes it.
    listed = server.admin("GET", f"/requests?after={entry['seq'] - 1}&limit=1")
    assert f"[{event.field('data')}]" in listed.text
    assert listed.json()["requests"] == [entry]


def test_a_new_stream_sends_only_new_requests(server: RunningServer) -> None:
    server.get(NAME)  # before the stream: not sent
    with _open(server) as reader:
        assert reader.event(timeout=0.5) is None
        server.get(NAME, metadata=False)
        event = reader.event()
        assert event is not None and event.entry["status"] == 400


def test_filters_keep_the_same_requests_on_the_stream_and_the_list(
    server: RunningServer,
) -> None:
    first = server.admin("GET", "/requests?limit=0").json()["last"]
    query = "?vm=demo-vm&path=/metadata/identity&status=4xx"
    with _open(server, query) as reader:
        server.get(NAME)  # 200, another path
        server.get(NAME, metadata=False)  # 400, another path
        server.get(TOKEN)  # 200 on the path
        server.get(TOKEN, metadata=False)  # 400 on the path: the one kept
        server.get(TOKEN + "&x=1", metadata=False)
        streamed = reader.events(2)
        assert reader.event(timeout=0.5) is None
    assert [(e.entry["path"], e.entry["status"]) for e in streamed] == [
        ("/metadata/identity/oauth2/token", 400)
    ] * 2
    listed = server.admin("GET", f"/requests{query}&after={first}").json()["requests"]
    assert listed == [e.entry for e in streamed]
    exact = server.admin("GET", f"/requests?after={first}&status=200").json()["requests"]
    assert [e["status"] for e in exact] == [200, 200]


@pytest.mark.parametrize("route", ["/requests", "/requests/stream"])
@pytest.mark.parametrize(
    ("query", "wording"),
    [
        ("status=4x", "status: expected a code such as 429 or a class such as 4xx, got '4x'"),
        ("after=-1", "after: expected a whole number, got '-1'"),
    ],
)
def test_bad_queries_are_400_naming_the_parameter(
    server: RunningServer, route: str, query: str, wording: str
) -> None:
    answer = server.admin("GET", f"{route}?{query}")
    assert answer.status_code == 400
    assert answer.json() == {"error": wording}


@pytest.mark.parametrize("route", ["/requests", "/requests/stream"])
def test_an_unknown_vm_is_a_404_as_on_vms_name(server: RunningServer, route: str) -> None:
    answer = server.admin("GET", f"{route}?vm=nobody")
    assert (answer.status_code, answer.json()) == (404, {"error": "no VM named nobody"})
    assert server.admin("GET", f"{route}?vm=").status_code == 400  # minLength 1


def test_resuming_sends_what_came_after_the_last_event_id_first(server: RunningServer) -> None:
    server.get(NAME)
    server.get(NAME, metadata=False)
    server.get(TOKEN)
    kept = server.admin("GET", "/requests?limit=3").json()["requests"]
    seqs = [e["seq"] for e in kept]
    with _open(server, headers=f"Last-Event-ID: {seqs[0]}\r\n") as reader:
        assert [int(e.field("id") or 0) for e in reader.events(2)] == seqs[1:]
        server.get(NAME)
        event = reader.event()
        assert event is not None and int(event.field("id") or 0) > seqs[2]
    # `after` does the same, and Last-Event-ID (an EventSource reconnecting) wins over it.
    later = server.admin("GET", f"/requests?after={seqs[1]}").json()["requests"]
    assert [e["seq"] for e in later[:1]] == seqs[2:]
    with _open(server, f"?after={seqs[1]}") as reader:
        assert [e.entry for e in reader.events(len(later))] == later
        assert reader.event(timeout=0.3) is None
    with _open(server, f"?after={seqs[0]}", headers=f"Last-Event-ID: {seqs[1]}\r\n") as reader:
        assert [e.entry for e in reader.events(len(later))] == later
        assert reader.event(timeout=0.3) is None
    bad = server.admin("GET", "/requests/stream", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "Last-Event-ID: expected a whole number, got 'x'"}


def test_a_client_that_hangs_up_ends_its_stream(server: RunningServer) -> None:
    assert _open_streams(server, 0) == 0
    reader = _open(server)
    second = _open(server)
    assert _open_streams(server, 2) == 2
    reader.close()
    assert _open_streams(server, 1) == 1
    second.close()
    assert _open_streams(server, 0) == 0


def test_an_open_stream_does_not_hold_up_a_stop(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    try:
        reader = _open(running)
        running.get(NAME)
        assert reader.event() is not None
        asked = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=5) == 0
        assert time.monotonic() - asked < 2.0
        assert reader.block(timeout=1.0) is None and reader.ended  # the answer ended
        reader.close()
    finally:
        running.stop()


def test_the_stream_is_409_when_the_journal_is_off(tmp_path: Path) -> None:
    running = start_server(tmp_path, env={"OPENIMDS_JOURNAL_SIZE": "0"})
    try:
        answer = running.admin("GET", "/requests/stream")
        assert answer.status_code == 409
        assert "journal is off" in answer.json()["error"]
    finally:
        running.stop()
