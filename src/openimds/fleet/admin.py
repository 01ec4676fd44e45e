"""Admin routes of the inventory: the VMs this server answers for, changed live.

GET    /vms           every VM (name, revision, and the VM as a VM file holds it)
POST   /vms           import: one VM or {"vms": [...]}, upserted by name, all or none
GET    /vms/{name}    one VM
PUT    /vms/{name}    add or replace one VM (If-None-Match: * adds only, If-Match: *
                      replaces only; 412 otherwise)
DELETE /vms/{name}    remove one VM

Bodies are validated like the configuration file, with the same messages (field path
and what is allowed). A change is served at once and drops only that VM's cached answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.config.report import Sources, format_errors
from openimds.config.vm_model import VmSpec
from openimds.fleet.inventory import InventoryError
from openimds.fleet.service import Inventory
from openimds.web.admin_app import json_body

VM_KEYS = frozenset(VmSpec.model_fields)


class VmInputError(ValueError):
    """A request body that is not a valid VM (or list of VMs); worded like config errors."""


class PreconditionFailed(ValueError):
    """If-Match / If-None-Match did not hold."""


class UnknownVm(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no VM named {self.name}"


class VmBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vms: list[VmSpec]


def parse_vms(data: Any, origin: str = "request body") -> list[VmSpec]:
    """One VM (its keys at the top) or {"vms": [...]}, as a VM file gives them."""
    shorthand = isinstance(data, dict) and "vms" not in data and bool(set(data) & VM_KEYS)
    batch = {"vms": [data]} if shorthand else data
    try:
        specs = VmBatch.model_validate(batch).vms
    except ValidationError as exc:
        sources = Sources(file=origin, shorthand=shorthand)
        raise VmInputError(format_errors(exc, sources, VmBatch)) from None
    names = [s.display_name for s in specs]
    if "" in names:
        raise VmInputError(f"{origin}: a VM needs a name (name or instance.compute.name)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise VmInputError(f"{origin}: VM names must be unique; repeated: {', '.join(repeated)}")
    return specs


def view(inventory: Inventory, name: str) -> dict[str, Any]:
    fleet = inventory.fleet
    return {"name": name, "revision": fleet.vms[name].revision, **fleet.view(name)}


@dataclass
class FleetAdmin:
    inventory: Inventory

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/vms", self.list_vms, methods=["GET"]),
            Route("/vms", self.import_vms, methods=["POST"]),
            Route("/vms/{name}", self.one, methods=["GET"]),
            Route("/vms/{name}", self.put, methods=["PUT"]),
            Route("/vms/{name}", self.delete, methods=["DELETE"]),
        ]

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {VmInputError: 400, UnknownVm: 404, InventoryError: 409, PreconditionFailed: 412}

    async def list_vms(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The effective VM inventory, each VM as a VM file holds it.
        """
        names = sorted(self.inventory.fleet.texts)
        return JSONResponse({"vms": [view(self.inventory, n) for n in names]})

    async def import_vms(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: "One VM, or {vms: [...]}, as a VM file holds them"
                properties:
                  name: {type: string}
                  addresses: {type: array, items: {type: string}}
                  instance: {type: object}
                  identities: {type: object, nullable: true}
        responses:
          200:
            description: The VMs were added or replaced by name (all or none).
            content:
              application/json:
                schema:
                  type: object
                  required: [changed, unchanged]
                  properties:
                    changed: {type: array, items: {type: string}}
                    unchanged: {type: array, items: {type: string}}
          400:
            description: The body is not a valid VM file (the error names the field).
          409:
            description: The VMs would share an address, or lack the addresses a fleet needs.
        """
        specs = parse_vms(await json_body(request))
        changed = self.inventory.upsert(specs)
        unchanged = sorted({s.display_name for s in specs} - set(changed))
        return JSONResponse({"changed": sorted(changed), "unchanged": unchanged})

    async def one(self, request: Request) -> Response:
        """
        responses:
          200:
            description: One VM.
          404:
            description: No VM has this name.
        """
        name = request.path_params["name"]
        if name not in self.inventory.fleet.texts:
            raise UnknownVm(name)
        return JSONResponse(view(self.inventory, name))

    async def put(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: A VM as a VM file holds it (docs/configuration.md)
                properties:
                  name: {type: string}
                  addresses: {type: array, items: {type: string}}
                  instance: {type: object}
                  identities: {type: object, nullable: true}
        responses:
          200:
            description: The VM was replaced (or was already so).
          201:
            description: The VM was added.
          400:
            description: The body is not a valid VM, or names another VM.
          409:
            description: The VM would share an address, or the fleet would lack addresses.
          412:
            description: If-None-Match or If-Match did not hold.
        """
        name = request.path_params["name"]
        data = await json_body(request)
        if isinstance(data, dict) and "vms" not in data and data.get("name", "") == "":
            data = {**data, "name": name}
        specs = parse_vms(data)
        if len(specs) != 1 or specs[0].display_name != name:
            raise VmInputError(f"request body: expected the one VM named {name}")
        exists = name in self.inventory.fleet.texts
        _check_preconditions(request, name, exists)
        self.inventory.upsert(specs)
        return JSONResponse(view(self.inventory, name), status_code=200 if exists else 201)

    async def delete(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The VM was removed.
          404:
            description: No VM has this name.
        """
        name = request.path_params["name"]
        if not self.inventory.remove([name]):
            raise UnknownVm(name)
        return JSONResponse({"name": name, "removed": True})


def _check_preconditions(request: Request, name: str, exists: bool) -> None:
    if request.headers.get("if-none-match") == "*" and exists:
        raise PreconditionFailed(f"VM {name} exists already")
    if request.headers.get("if-match") == "*" and not exists:
        raise PreconditionFailed(f"no VM named {name}")
