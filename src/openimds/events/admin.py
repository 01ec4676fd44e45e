"""Admin API of scheduled events (token-protected by the admin app).

GET  /events                    live events, their state and approvals; incarnations
POST /events                    schedule one event (a ScheduleRequest)
GET  /events/{id}               one event
POST /events/{id}/start         start now
POST /events/{id}/complete      remove a Started event now
POST /events/{id}/cancel        remove a Pending or Scheduled event
POST /events/{id}/approve       approve on a VM's behalf: {"vm": NAME}
POST /events/scenario           load a scenario (its relative times count from now)
POST /events/drill              a built-in drill: {"drill": NAME, "dev": bool, "vm": NAME}
GET  /events/drills             the drills and their timings
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.core.scheduled_events import (
    DuplicateEvent,
    Event,
    InvalidTransition,
    Trigger,
    UnknownEvent,
)
from openimds.events.drills import DRILLS, UnknownDrill, drill_request
from openimds.events.live import LiveEvents
from openimds.events.schedule import ScheduleError, validate_request
from openimds.web.admin_app import json_body

Handler = Callable[[Request], Awaitable[Response]]


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def view(event: Event) -> dict[str, Any]:
    """An event as operators see it: everything, including who approved and when."""
    approved = {a.vm for a in event.approvals}
    return {
        "eventId": event.id,
        "type": event.type,
        "state": event.state,
        "vms": list(event.vms),
        "resources": list(event.resources),
        "postedAt": iso(event.posted_at),
        "notBefore": iso(event.not_before),
        "startedAt": iso(event.started_at),
        "removalAt": iso(event.removal_at),
        "durationInSeconds": event.duration,
        "description": event.description,
        "eventSource": event.source,
        "completeAfter": event.hold,
        "approval": event.policy,
        "approvals": [{"vm": a.vm, "at": iso(a.at)} for a in event.approvals],
        "awaiting": [vm for vm in event.vms if vm not in approved],
        "cancelAt": iso(event.cancel_at),
    }


def changed(event_id: str, after: Event | None) -> Response:
    """The answer to an operator's change of one event: the event after it (None once
    removed)."""
    return JSONResponse({"eventId": event_id, "event": None if after is None else view(after)})


@dataclass
class EventsAdmin:
    live_events: LiveEvents

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        """Operator mistakes become 4xx with a sentence (store failures: the app's 503)."""
        return {
            ScheduleError: 400,
            UnknownDrill: 404,
            UnknownEvent: 404,
            InvalidTransition: 409,
            DuplicateEvent: 409,
        }

    def routes(self) -> list[BaseRoute]:
        live_events = self.live_events

        async def list_events(request: Request) -> Response:
            """
            responses:
              200:
                description: Live events, their state and approvals; each VM's incarnation.
            """
            book = live_events.book_at(live_events.clock())
            events = sorted(book.events.values(), key=lambda e: (e.posted_at, e.id))
            return JSONResponse(
                {"events": [view(e) for e in events], "incarnations": dict(book.incarnations)}
            )

        async def schedule(request: Request) -> Response:
            """
            requestBody:
              required: true
              content:
                application/json:
                  schema:
                    type: object
                    required: [type]
                    additionalProperties: false
                    properties:
                      type:
                        enum: [Freeze, Reboot, Redeploy, Preempt, Terminate]
                      target:
                        type: string
                        description: vm:NAME, several vm:A,vm:B, or all; default all
                      at: {type: string, description: "now, an ISO time or +DURATION"}
                      notBefore: {type: string}
                      durationInSeconds: {type: integer, minimum: -1}
                      description: {type: string}
                      eventSource: {enum: [Platform, User]}
                      completeAfter: {type: number, minimum: 0}
                      approval: {enum: [any, all]}
                      eventId: {type: string, pattern: "^[A-Za-z0-9._-]{1,64}$"}
            responses:
              201:
                description: The event scheduled (fields in docs/scheduled-events.md).
                content:
                  application/json:
                    schema:
                      type: object
                      required: [events]
                      properties:
                        events: {type: array, items: {type: object}}
              400:
                description: The request cannot become an event (the error says why).
              409:
                description: An event with this eventId exists already.
            """
            scheduled = live_events.schedule([validate_request(await json_body(request))])
            return JSONResponse({"events": [view(_live(e)) for e in scheduled]}, status_code=201)

        async def scenario(request: Request) -> Response:
            """
            requestBody:
              required: true
              content:
                application/json:
                  schema:
                    type: object
                    required: [events]
                    properties:
                      events: {type: array, items: {type: object}}
            responses:
              201:
                description: The events of the scenario; relative times count from now.
                content:
                  application/json:
                    schema:
                      type: object
                      required: [events]
                      properties:
                        events: {type: array, items: {type: object}}
              400:
                description: The request cannot become an event (the error says why).
              409:
                description: An event with this eventId exists already.
            """
            scheduled = live_events.load_scenario(await json_body(request))
            return JSONResponse({"events": [view(_live(e)) for e in scheduled]}, status_code=201)

        async def drill(request: Request) -> Response:
            """
            responses:
              201:
                description: The drill's events (docs/scheduled-events.md, Drills).
              400:
                description: The body is not valid (the error says why).
              404:
                description: No drill has this name.
            """
            body = await json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("drill"), str):
                raise ScheduleError('expected {"drill": NAME, "dev": true|false, "vm": NAME}')
            vm = body.get("vm")
            data = drill_request(
                body["drill"], vm if isinstance(vm, str) else None, bool(body.get("dev"))
            )
            scheduled = live_events.schedule([validate_request(data)])
            return JSONResponse({"events": [view(_live(e)) for e in scheduled]}, status_code=201)

        async def drills(request: Request) -> Response:
            """
            responses:
              200:
                description: The built-in drills with their real and dev timings.
            """
            return JSONResponse(
                {
                    "drills": [
                        {
                            "name": d.name,
                            "type": d.type,
                            "eventSource": d.source,
                            "description": d.description,
                            "notice": d.notice,
                            "devNotice": d.dev_notice,
                            "durationInSeconds": d.duration,
                            "summary": d.summary,
                            "cancelAfter": d.cancel_after,
                            "devCancelAfter": d.dev_cancel_after,
                        }
                        for d in DRILLS.values()
                    ]
                }
            )

        async def one(request: Request) -> Response:
            """
            responses:
              200:
                description: One live event.
              404:
                description: No live event has this id.
            """
            event_id = request.path_params["event_id"]
            event = live_events.book_at(live_events.clock()).events.get(event_id)
            if event is None:
                raise UnknownEvent(event_id)
            return JSONResponse(view(event))

        def act(trigger: Trigger) -> Handler:
            async def handler(request: Request) -> Response:
                """
                responses:
                  200:
                    description: The event after the change (null once removed).
                  404:
                    description: No live event has this id.
                  409:
                    description: The event's state does not allow this change.
                """
                event_id = request.path_params["event_id"]
                return changed(event_id, live_events.run(event_id, trigger))

            return handler

        async def approve(request: Request) -> Response:
            """
            requestBody:
              required: true
              content:
                application/json:
                  schema:
                    type: object
                    required: [vm]
                    properties:
                      vm: {type: string, description: the VM whose approval this is}
            responses:
              200:
                description: The event after the approval (Started once its policy is met).
              400:
                description: The body does not name a VM.
              404:
                description: The VM has no live event with this id.
            """
            body = await json_body(request)
            vm = body.get("vm") if isinstance(body, dict) else None
            if not isinstance(vm, str) or not vm:
                raise ScheduleError('expected {"vm": NAME}: the VM whose approval this is')
            event_id = request.path_params["event_id"]
            return changed(event_id, live_events.approve_for(vm, event_id))

        def _live(event: Event) -> Event:
            # The stored version (it may already have been posted or started).
            return live_events.book.events.get(event.id, event)

        return [
            Route("/events", list_events, methods=["GET"]),
            Route("/events", schedule, methods=["POST"]),
            Route("/events/scenario", scenario, methods=["POST"]),
            Route("/events/drill", drill, methods=["POST"]),
            Route("/events/drills", drills, methods=["GET"]),
            Route("/events/{event_id}", one, methods=["GET"]),
            Route("/events/{event_id}/start", act("start"), methods=["POST"]),
            Route("/events/{event_id}/complete", act("complete"), methods=["POST"]),
            Route("/events/{event_id}/cancel", act("cancel"), methods=["POST"]),
            Route("/events/{event_id}/approve", approve, methods=["POST"]),
        ]
