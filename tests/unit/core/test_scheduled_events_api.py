"""GET and POST /metadata/scheduledevents in the pure core: the document per api-version and
the POST rules. Virtual clock."""

from __future__ import annotations

import json

import pytest

from openimds.core.app import build_dispatcher
from openimds.core.http import Request, Response
from openimds.core.scheduled_events import EventBook, EventType, advance, command
from openimds.core.scheduled_events_api import (
    Approve,
    ScheduledEventsEndpoint,
    document,
    events_version,
)
from openimds.core.versions import SCHEDULED_EVENTS_VERSIONS
from tests.support.events import T0, event, posted
from tests.support.imds import bare_vm

SE_NEWEST = ["2020-07-01", "2019-08-01", "2019-04-01"]


# -- the document -----------------------------------------------------------------------------
def events_of(doc: dict[str, object]) -> list[dict[str, object]]:
    events = doc["Events"]
    assert isinstance(events, list)
    return events


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        ("2017-08-01", []),
        ("2017-11-01", []),
        ("2019-01-01", []),
        ("2019-04-01", ["Description"]),
        ("2019-08-01", ["Description", "EventSource"]),
        ("2020-07-01", ["Description", "EventSource", "DurationInSeconds"]),
        # General versions: the nearest SE version at or below (Azure does not say; inferred).
        ("2019-06-01", ["Description"]),
        ("2019-08-15", ["Description", "EventSource"]),
        ("2025-04-07", ["Description", "EventSource", "DurationInSeconds"]),
    ],
)
def test_fields_are_gated_by_version(version: str, keys: list[str]) -> None:
    doc = document(posted(event()), "vm-a", version)
    base = ["EventId", "EventType", "ResourceType", "Resources", "EventStatus", "NotBefore"]
    assert doc["DocumentIncarnation"] == 1
    (only,) = events_of(doc)
    assert list(only) == base + keys
    assert only["NotBefore"] == "Mon, 24 Nov 2025 16:15:00 GMT"
    assert only["Resources"] == ["name-vm-a"] and only["ResourceType"] == "VirtualMachine"
    if "DurationInSeconds" in keys:
        assert only["DurationInSeconds"] == 5


@pytest.mark.parametrize(
    ("event_type", "first"),
    [("Freeze", "2017-03-01"), ("Preempt", "2017-11-01"), ("Terminate", "2019-01-01")],
)
def test_event_types_are_gated_by_version(event_type: EventType, first: str) -> None:
    book = posted(event(event_type=event_type))
    for version in SCHEDULED_EVENTS_VERSIONS:
        shown = document(book, "vm-a", version)["Events"]
        assert bool(shown) == (version >= first), version


def test_started_document_and_preview_names() -> None:
    book = command(posted(event()), "E1", "start", T0 + 1).book
    (shown,) = events_of(document(book, "vm-a", "2020-07-01"))
    assert shown["EventStatus"] == "Started" and shown["NotBefore"] == ""
    (preview,) = events_of(document(book, "vm-a", "2017-03-01"))
    assert preview["Resources"] == ["_name-vm-a"]  # 2.2: before 2017-08-01


def test_empty_document() -> None:
    assert document(EventBook(), "vm-a", "2020-07-01") == {
        "DocumentIncarnation": 0,
        "Events": [],
    }


@pytest.mark.parametrize("version", ["latest", "2019-04-02", "2017-01-01", "2020-07-01 ", ""])
def test_unknown_versions(version: str) -> None:
    with pytest.raises(Exception, match="api-version is invalid"):
        events_version(version)


# -- the endpoint over the dispatcher ------------------------------------------------------
VM_A = bare_vm("vm-a")


class Harness:
    def __init__(self, book: EventBook) -> None:
        self.book = book
        self.asked: list[float] = []
        endpoint = ScheduledEventsEndpoint(self.book_at)
        self.dispatcher = build_dispatcher([("/metadata/scheduledevents", endpoint)])

    def book_at(self, now: float) -> EventBook:
        self.asked.append(now)
        self.book = advance(self.book, now).book
        return self.book

    def call(
        self,
        method: str = "GET",
        query: str = "api-version=2020-07-01",
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (("metadata", "true"),),
        now: float = T0 + 1,
    ) -> Response:
        pairs = tuple(
            (name, value) for name, _, value in (p.partition("=") for p in query.split("&") if p)
        )
        request = Request(method, "/metadata/scheduledevents", pairs, headers, body)
        return self.dispatcher.handle(request, VM_A, now)


def test_get_reads_the_book_at_the_request_time() -> None:
    harness = Harness(posted(event(notice=10)))
    response = harness.call(now=T0 + 11)
    assert harness.asked == [T0 + 11]
    assert response.status == 200 and not response.cacheable
    body = json.loads(response.body)
    assert body["Events"][0]["EventStatus"] == "Started"
    assert isinstance(body["DocumentIncarnation"], int)


def test_post_returns_the_approval_as_an_effect() -> None:
    harness = Harness(posted(event()))
    body = b'{"StartRequests": [{"EventId": "e1"}]}'
    response = harness.call("POST", body=body)
    assert (response.status, response.body, response.cacheable) == (200, b"", False)
    assert response.effects == (Approve("vm-a", ("E1",), T0 + 1),)
    assert harness.book.events["E1"].approvals == (), "the endpoint itself writes nothing"


def test_post_accepts_a_form_content_type_and_several_ids() -> None:
    harness = Harness(posted(event(), event("E2")))
    body = b'{"StartRequests":[{"EventId":"E1"},{"EventId":"E2"}]}'
    form = (("metadata", "true"), ("content-type", "application/x-www-form-urlencoded"))
    response = harness.call("POST", body=body, headers=form)
    assert response.status == 200
    (approval,) = response.effects
    assert isinstance(approval, Approve) and approval.event_ids == ("E1", "E2")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "The request body is empty"),
        (b"   ", "The request body is empty"),
        (b"StartRequests=E1", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "has no StartRequests"),
        (b'{"startrequests": []}', "has no StartRequests"),
        (b'{"StartRequests": {"EventId": "E1"}}', "must be an array"),
        (b'{"StartRequests": ["E1"]}', "needs an EventId string"),
        (b'{"StartRequests": [{"EventID": "E1"}]}', "needs an EventId string"),
        (b'{"StartRequests": [{"EventId": 7}]}', "needs an EventId string"),
        (b'{"StartRequests": [{"EventId": ""}]}', "needs an EventId string"),
    ],
)
def test_malformed_posts_get_400(body: bytes, detail: str) -> None:
    response = Harness(posted(event())).call("POST", body=body)
    assert response.status == 400 and not response.effects
    message = json.loads(response.body)["error"]
    assert detail in message and '{"StartRequests": [{"EventId": "<id>"}]}' in message


def test_unknown_event_id_gets_a_400_naming_it() -> None:
    response = Harness(posted(event())).call(
        "POST", body=b'{"StartRequests":[{"EventId":"E1"},{"EventId":"ghost"}]}'
    )
    assert response.status == 400 and not response.effects
    assert "EventId 'ghost' is not a scheduled event" in json.loads(response.body)["error"]


def test_empty_start_requests_is_a_no_op() -> None:
    response = Harness(posted(event())).call("POST", body=b'{"StartRequests":[]}')
    assert response.status == 200 and response.effects == (Approve("vm-a", (), T0 + 1),)


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("query", ["", "api-version=latest", "api-version=2019-04-02"])
def test_bad_version_lists_the_scheduled_events_versions(method: str, query: str) -> None:
    response = Harness(EventBook()).call(method, query, body=b'{"StartRequests":[]}')
    assert response.status == 400
    body = json.loads(response.body)
    assert body["newest-versions"] == SE_NEWEST and "api-version is invalid" in body["error"]


def test_dispatcher_rules_apply() -> None:
    harness = Harness(EventBook())
    assert harness.call(headers=()).status == 400
    assert harness.call("PUT").status == 405
    assert harness.call("DELETE").status == 405
    assert harness.call(query="api-version=2020-07-01&format=text").status == 400
    assert harness.call(query="api-version=2019-04-01").status == 200  # SE-only version
    assert harness.call(query="api-version=2021-02-01").status == 200  # general version
