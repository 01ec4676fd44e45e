"""GET and POST /metadata/scheduledevents (docs/scheduled-events.md).

The endpoint reads the live events through an injected port (`book_at(now)`: the shell's
state, advanced to `now`) and never writes: an approval comes back as an `Approve` effect,
which the shell persists before the 200 is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final

from openimds.core.endpoint import BaseEndpoint, require_version
from openimds.core.errors import AKA, BadRequest, InvalidApiVersion
from openimds.core.formats import parse_format, to_json
from openimds.core.http import Request, Response
from openimds.core.scheduled_events import (
    Event,
    EventBook,
    EventType,
    UnknownEvent,
    visible_ids,
)
from openimds.core.timestamps import rfc1123
from openimds.core.versions import GENERAL_SET, SCHEDULED_EVENTS_VERSIONS
from openimds.core.vm import VmSnapshot

# Its own list and every general version (mapped down to the nearest of its own).
_ACCEPTED: Final[frozenset[str]] = frozenset(SCHEDULED_EVENTS_VERSIONS) | GENERAL_SET

# The scheduled-events api-version each field and event type appeared in.
DESCRIPTION_SINCE: Final = "2019-04-01"
EVENT_SOURCE_SINCE: Final = "2019-08-01"
DURATION_SINCE: Final = "2020-07-01"
TYPE_SINCE: Final[dict[EventType, str]] = {
    "Freeze": "2017-03-01",
    "Reboot": "2017-03-01",
    "Redeploy": "2017-03-01",
    "Preempt": "2017-11-01",
    "Terminate": "2019-01-01",
}
# Before api-version 2017-08-01, IaaS resource names carried a leading underscore.
PLAIN_NAMES_SINCE: Final = "2017-08-01"


class InvalidScheduledEventsVersion(InvalidApiVersion):
    """Azure's api-version error; `newest-versions` names the scheduled-events list, which
    is the one a client of this endpoint can use (Azure does not say which list it names;
    docs/scheduled-events.md)."""

    def payload(self) -> dict[str, object]:
        newest = list(reversed(SCHEDULED_EVENTS_VERSIONS[-3:]))
        return {"error": self.text, "newest-versions": newest}


class MalformedStartRequests(BadRequest):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f'Bad request. {detail}. Expected {{"StartRequests": [{{"EventId": "<id>"}}]}}. {AKA}'
        )


class UnknownEventId(BadRequest):
    # Azure does not document an unknown id; a 400 naming it tells a handler not to retry it.
    def __init__(self, event_id: str) -> None:
        super().__init__(
            f"Bad request. EventId '{event_id}' is not a scheduled event of this virtual "
            f"machine; nothing was approved. {AKA}"
        )


@dataclass(frozen=True, slots=True)
class Approve:
    """Effect: `vm` approved these events at `at`."""

    vm: str
    event_ids: tuple[str, ...]
    at: float


def events_version(api_version: str) -> str:
    """The scheduled-events version whose fields a request gets: its own, or for a
    general version the nearest scheduled-events version at or below it (Azure does not say
    how it serves general versions; docs/scheduled-events.md)."""
    if api_version not in _ACCEPTED or api_version < SCHEDULED_EVENTS_VERSIONS[0]:
        raise InvalidScheduledEventsVersion()
    return [v for v in SCHEDULED_EVENTS_VERSIONS if v <= api_version][-1]


def render_event(event: Event, version: str) -> dict[str, object]:
    names = event.resources
    if version < PLAIN_NAMES_SINCE:
        names = tuple("_" + name for name in names)
    out: dict[str, object] = {
        "EventId": event.id,
        "EventType": event.type,
        "ResourceType": "VirtualMachine",
        "Resources": list(names),
        "EventStatus": event.state,
        "NotBefore": "" if event.state == "Started" else rfc1123(event.not_before),
    }
    if version >= DESCRIPTION_SINCE:
        out["Description"] = event.description
    if version >= EVENT_SOURCE_SINCE:
        out["EventSource"] = event.source
    if version >= DURATION_SINCE:
        out["DurationInSeconds"] = event.duration
    return out


def document(book: EventBook, vm: str, api_version: str) -> dict[str, object]:
    """A VM's document at an api-version. Event types newer than the version are left out
    (each type has the version that introduced it); the incarnation is the VM's, shared by
    every version."""
    version = events_version(api_version)
    events = [render_event(e, version) for e in book.for_vm(vm) if TYPE_SINCE[e.type] <= version]
    return {"DocumentIncarnation": book.incarnation(vm), "Events": events}


def parse_start_requests(body: bytes) -> tuple[str, ...]:
    """The EventIds of a POST body. Any content type is accepted: the documented
    PowerShell sample sends JSON as a form (Azure does not document the content type;
    docs/scheduled-events.md)."""
    if not body.strip():
        raise MalformedStartRequests("The request body is empty")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedStartRequests(f"The request body is not valid JSON ({exc})") from None
    except RecursionError:  # a few thousand `[` fit in the body limit
        raise MalformedStartRequests("The request body is nested too deeply") from None
    if not isinstance(data, dict) or "StartRequests" not in data:
        raise MalformedStartRequests("The request body has no StartRequests")
    requests = data["StartRequests"]
    if not isinstance(requests, list):
        raise MalformedStartRequests("StartRequests must be an array")
    ids: list[str] = []
    for item in requests:
        event_id = item.get("EventId") if isinstance(item, dict) else None
        if not isinstance(event_id, str) or not event_id:
            raise MalformedStartRequests("Each StartRequests item needs an EventId string")
        ids.append(event_id)
    return tuple(ids)


BookPort = Callable[[float], EventBook]


class ScheduledEventsEndpoint(BaseEndpoint):
    name: ClassVar[str] = "scheduledevents"
    methods: ClassVar[tuple[str, ...]] = ("GET", "POST")
    effects: ClassVar[tuple[type, ...]] = (Approve,)

    def __init__(self, book_at: BookPort) -> None:
        self._book_at = book_at
        # (VM, version) -> the book a body was rendered from, and the body. A book is
        # replaced whole on every change, so identity says whether the body is current.
        self._rendered: dict[tuple[str, str], tuple[EventBook, bytes]] = {}

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        version = require_version(
            request, SCHEDULED_EVENTS_VERSIONS[0], _ACCEPTED, InvalidScheduledEventsVersion
        )
        parse_format(request.param("format"), allow_text=False)
        book = self._book_at(now)
        if request.method == "POST":
            return self._approve(request, vm, book, now)
        # Time-dependent (NotBefore passes, events end): never cached by the listener.
        return Response(200, self._body(book, vm.id, version))

    def _body(self, book: EventBook, vm: str, version: str) -> bytes:
        key = (vm, version)
        hit = self._rendered.get(key)
        if hit is not None and hit[0] is book:
            return hit[1]
        if len(self._rendered) >= 4096:
            self._rendered.clear()  # bounded: many VMs x versions cannot grow it forever
        body = to_json(document(book, vm, version))
        self._rendered[key] = (book, body)
        return body

    def _approve(self, request: Request, vm: VmSnapshot, book: EventBook, now: float) -> Response:
        try:
            resolved = visible_ids(book, vm.id, parse_start_requests(request.body))
        except UnknownEvent as exc:
            raise UnknownEventId(exc.event_id) from None
        # Azure does not document the POST's response body; an empty 200 is what handlers check.
        return Response(200, b"", effects=(Approve(vm.id, resolved, now),))
