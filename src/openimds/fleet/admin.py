"""Admin routes of the inventory: the VMs this server answers for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.fleet.inventory import Fleet


@dataclass
class FleetAdmin:
    fleet: Fleet

    def routes(self) -> list[BaseRoute]:
        return [Route("/vms", self.vms, methods=["GET"])]

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    async def vms(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The effective VM inventory, as the VM file model validated it.
        """
        fleet = self.fleet
        return JSONResponse(
            {
                "vms": [
                    {
                        "name": name,
                        "revision": fleet.vms[name].revision,
                        **spec.model_dump(mode="json", exclude_none=True),
                    }
                    for name, spec in fleet.specs.items()
                ]
            }
        )
