"""Admin API of the request journal (token-protected by the admin app).

GET    /requests?vm=NAME&after=SEQ&limit=N   the last requests (oldest first), redacted
DELETE /requests                              forget them
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.fleet.inventory import Fleet
from openimds.web.metadata.journal import Journal


class JournalError(ValueError):
    """A journal query that cannot be answered, worded for the operator."""


def _int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise JournalError(f"{name}: expected a whole number, got {raw!r}")
    return int(raw)


@dataclass
class JournalAdmin:
    journal: Journal | None
    fleet: Fleet

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {JournalError: 400}

    def routes(self) -> list[BaseRoute]:
        journal = self.journal
        fleet = self.fleet

        async def entries(request: Request) -> Response:
            """
            responses:
              200:
                description: The journal's requests, oldest first (secrets redacted).
              400:
                description: A query parameter is not valid, or the VM is unknown.
              409:
                description: The journal is off (journal.size is 0).
            """
            if journal is None:
                return JSONResponse({"error": "the request journal is off (journal.size 0)"}, 409)
            vm = request.query_params.get("vm")
            if vm is not None and vm not in fleet.specs:
                raise JournalError(f"vm: no VM is named {vm!r}")
            after = _int(request, "after", 0) or 0
            limit = _int(request, "limit", None)
            return JSONResponse(
                {"requests": journal.entries(vm, after, limit), "last": journal.seq}
            )

        async def clear(request: Request) -> Response:
            """
            responses:
              200:
                description: The journal is empty.
            """
            if journal is not None:
                journal.clear()
            return JSONResponse({"cleared": True})

        return [
            Route("/requests", entries, methods=["GET"]),
            Route("/requests", clear, methods=["DELETE"]),
        ]
