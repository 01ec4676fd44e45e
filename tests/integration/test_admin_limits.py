"""Out-of-range values on the admin API: a 400 naming the limit, never a 500; and no value
the API accepts breaks the server (the clock at its furthest still serves tokens, attested
documents, events and /clock)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer, start_server

TOKEN = (
    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"
)
ATTESTED = "/metadata/attested/document?api-version=2021-02-01"
TEN_YEARS = 10 * 365 * 86400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("limits"))
    yield running
    running.stop()


def _post_raw(server: RunningServer, path: str, body: str) -> tuple[int, str]:
    answer = server.admin(
        "POST", path, content=body.encode(), headers={"Content-Type": "application/json"}
    )
    return answer.status_code, answer.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("path", ["/faults/boot", "/clock/advance", "/faults", "/events"])
def test_json_with_a_non_finite_literal_is_a_400(
    server: RunningServer, path: str, literal: str
) -> None:
    body = {
        "/faults/boot": f'{{"seconds": {literal}}}',
        "/clock/advance": f'{{"seconds": {literal}}}',
        "/faults": f'{{"path": "/metadata/instance", "latency": {literal}}}',
        "/events": f'{{"type": "Reboot", "completeAfter": {literal}}}',
    }[path]
    status, text = _post_raw(server, path, body)
    assert status == 400, text
    assert literal in text


def test_a_boot_window_past_the_limit_names_it(server: RunningServer) -> None:
    status, text = _post_raw(server, "/faults/boot", '{"seconds": 86401}')
    assert status == 400
    assert "86400" in text
    status, _ = _post_raw(server, "/faults/boot", '{"seconds": 86400}')
    assert status == 201
    assert server.admin("DELETE", "/faults").status_code == 200
    assert "Traceback" not in server.output


def test_a_clock_move_past_the_limit_names_it_and_changes_nothing(server: RunningServer) -> None:
    before = server.admin("GET", "/clock").json()["offset"]
    status, text = _post_raw(server, "/clock/advance", '{"seconds": 1e308}')
    assert status == 400
    assert f"{TEN_YEARS}" in text
    assert server.admin("GET", "/clock").json()["offset"] == before


def test_the_clock_at_its_furthest_still_serves_everything(server: RunningServer) -> None:
    offset = server.admin("GET", "/clock").json()["offset"]
    status, text = _post_raw(server, "/clock/advance", f'{{"seconds": {TEN_YEARS - offset}}}')
    assert status == 200, text
    # The limit is on the total: one more second is refused.
    assert _post_raw(server, "/clock/advance", '{"seconds": 1}')[0] == 400
    clock = server.admin("GET", "/clock")
    assert clock.status_code == 200
    token = server.get(TOKEN)
    assert token.status_code == 200, token.text
    assert int(token.json()["expires_on"]) > clock.json()["now"]
    assert server.get(ATTESTED).status_code == 200
    scheduled = server.admin("POST", "/events", json={"type": "Reboot"})
    assert scheduled.status_code == 201, scheduled.text
    events = server.get("/metadata/scheduledevents?api-version=2020-07-01")
    assert events.status_code == 200
    assert events.json()["Events"]
    boot = server.admin("POST", "/faults/boot", json={"seconds": 86400})
    assert boot.status_code == 201, boot.text
    assert server.admin("DELETE", "/faults").status_code == 200
    assert "Traceback" not in server.output
