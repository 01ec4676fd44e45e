"""Admin API of fault injection (token-protected by the admin app).

GET    /faults              the rules, their hits and whether they are spent
POST   /faults              add a rule (docs/faults.md)
DELETE /faults              remove every rule
DELETE /faults/{id}         remove one rule
POST   /faults/boot         a boot window: every call gets 410 for `seconds` from now
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.core.faults import spent
from openimds.faults.rules import FaultError, FaultRules, LiveRule, UnknownFault, parse_spec


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
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise FaultError(f"the body is not JSON: {exc}") from None


@dataclass
class FaultsAdmin:
    fault_rules: FaultRules

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {FaultError: 400, UnknownFault: 404}

    def routes(self) -> list[BaseRoute]:
        fault_rules = self.fault_rules

        async def list_rules(request: Request) -> Response:
            """
            responses:
              200:
                description: The fault rules in the order they apply, with their hits.
            """
            now = fault_rules.clock()
            return JSONResponse({"rules": [view(live, now) for live in fault_rules.rules]})

        async def add(request: Request) -> Response:
            """
            responses:
              201:
                description: The rule added.
              400:
                description: The rule is not valid (the error says why).
            """
            live = fault_rules.add(parse_spec(await _body(request)))
            return JSONResponse({"rule": view(live, fault_rules.clock())}, status_code=201)

        async def clear(request: Request) -> Response:
            """
            responses:
              200:
                description: How many rules were removed.
            """
            return JSONResponse({"removed": fault_rules.clear()})

        async def remove(request: Request) -> Response:
            """
            responses:
              200:
                description: The rule removed.
              404:
                description: No rule has this id.
            """
            live = fault_rules.remove(request.path_params["rule_id"])
            return JSONResponse({"rule": view(live, fault_rules.clock())})

        async def boot(request: Request) -> Response:
            """
            responses:
              201:
                description: The boot window's rule (every call gets 410 until it ends).
              400:
                description: seconds is missing or not a positive number.
            """
            seconds = (await _body(request)).get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise FaultError("seconds: give the boot window's length, a positive number")
            live = fault_rules.boot(float(seconds))
            return JSONResponse({"rule": view(live, fault_rules.clock())}, status_code=201)

        return [
            Route("/faults", list_rules, methods=["GET"]),
            Route("/faults", add, methods=["POST"]),
            Route("/faults", clear, methods=["DELETE"]),
            Route("/faults/boot", boot, methods=["POST"]),
            Route("/faults/{rule_id}", remove, methods=["DELETE"]),
        ]
