"""Admin API of fault injection (token-protected by the admin app).

GET    /faults              the rules, their hits and whether they are spent
POST   /faults              add a rule (docs/faults.md)
DELETE /faults              remove every rule
DELETE /faults/{id}         remove one rule
POST   /faults/boot         a boot window: every call gets 410 for `seconds` from now
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.config.faults_model import MAX_SECONDS
from openimds.core.faults import spent
from openimds.faults.rules import FaultError, FaultRules, LiveRule, parse_spec
from openimds.web.admin_app import json_body


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def view(live: LiveRule, now: float) -> dict[str, Any]:
    rule = live.rule
    shown = live.spec.model_dump(exclude_defaults=True, exclude={"id", "after", "window"})
    return {
        "id": rule.id,
        "kind": rule.kind,
        **shown,
        "path": rule.path,
        "vm": rule.vm,
        "hits": live.hits,
        "start": _iso(rule.start),
        "until": _iso(rule.until),
        "spent": spent(rule, live.hits, now),
    }


async def _body(request: Request) -> Any:
    if not await request.body():
        return {}
    return await json_body(request)


@dataclass
class FaultsAdmin:
    fault_rules: FaultRules
    # Whether a VM of this name is served now: a rule for another could never fire.
    has_vm: Callable[[str], bool] = lambda name: True

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/faults", self.list_rules, methods=["GET"]),
            Route("/faults", self.add, methods=["POST"]),
            Route("/faults", self.clear, methods=["DELETE"]),
            Route("/faults/boot", self.boot, methods=["POST"]),
            Route("/faults/{rule_id}", self.remove, methods=["DELETE"]),
        ]

    async def list_rules(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The fault rules in the order they apply, with their hits.
        """
        now = self.fault_rules.clock()
        return JSONResponse({"rules": [view(live, now) for live in self.fault_rules.rules]})

    async def add(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: "A rule (docs/faults.md): exactly one of status, latency,
                  close, hang (sequence and retry_after: see docs/faults.md)"
                additionalProperties: false
                properties:
                  path: {type: string, minLength: 1, maxLength: 512, pattern: "^[/*]"}
                  status: {type: integer, minimum: 400, maximum: 599}
                  latency: {type: number, minimum: 0, maximum: 86400}
                  close: {type: boolean, enum: [true]}
                  hang: {type: boolean, enum: [true]}
                  times: {type: integer, minimum: 1}
                  after: {type: number, minimum: 0, maximum: 86400}
                  window: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 86400}
                oneOf:
                  - {required: [status]}
                  - {required: [latency]}
                  - {required: [close]}
                  - {required: [hang]}
        responses:
          201:
            description: The rule added.
          400:
            description: The rule is not valid, or names a VM the server does not
              serve (the error says why).
        """
        spec = parse_spec(await _body(request))
        if spec.vm is not None and not self.has_vm(spec.vm):
            raise FaultError(f"vm: no VM is named {spec.vm!r}")
        live = self.fault_rules.add(spec)
        return JSONResponse({"rule": view(live, self.fault_rules.clock())}, status_code=201)

    async def clear(self, request: Request) -> Response:
        """
        responses:
          200:
            description: How many rules were removed.
        """
        return JSONResponse({"removed": self.fault_rules.clear()})

    async def remove(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The rule removed.
          404:
            description: No rule has this id.
        """
        live = self.fault_rules.remove(request.path_params["rule_id"])
        return JSONResponse({"rule": view(live, self.fault_rules.clock())})

    async def boot(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [seconds]
                properties:
                  seconds: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 86400}
        responses:
          201:
            description: The boot window's rule (every call gets 410 until it ends).
          400:
            description: seconds is missing, not a number, or not above 0 and at most
              86400 (a day).
        """
        body = await _body(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 < seconds <= MAX_SECONDS
        ):
            raise FaultError(
                "seconds: give the boot window's length, a number above 0 and at most "
                f"{MAX_SECONDS:g}"
            )
        live = self.fault_rules.boot(float(seconds))
        return JSONResponse({"rule": view(live, self.fault_rules.clock())}, status_code=201)
