"""`GET /vms/{name}/guest` on the admin listener: a VM's provisioning state (guest/book.py)
as its agents reported it, for `openimds vm show`, `openimds vm wait` and the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.guest.book import GuestBook
from openimds.inventory.live import LiveInventory, UnknownVm


@dataclass
class GuestAdmin:
    book: GuestBook
    inventory: LiveInventory

    def routes(self) -> list[BaseRoute]:
        return [Route("/vms/{name}/guest", self.guest, methods=["GET"])]

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {UnknownVm: 404}

    async def guest(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The VM's provisioning state (its goal state's incarnation, its
              last health report with the description decoded, its agent's status, when
              it last fetched its goal state) and a one-line summary.
          404:
            description: No VM has this name.
        """
        name = request.path_params["name"]
        self.inventory.snapshot(name)  # UnknownVm: 404
        return JSONResponse(self.book.view(name))
