"""Admin routes of the inventory: the VMs this server answers for, changed live.

GET    /vms           the VMs (name, revision, and the VM as a VM file holds it), or
                      summary rows; searched, filtered and paged (fleet/catalog.py)
POST   /vms           import: one VM or {"vms": [...]}, upserted by name, all or none;
                      ?prune=true also removes the VMs the body does not name
POST   /vms/remove    remove {"names": [...]} in one store batch, all or none
GET    /vms/{name}    one VM
PUT    /vms/{name}    add or replace one VM (If-None-Match: * adds only, If-Match: *
                      replaces only; 412 otherwise)
DELETE /vms/{name}    remove one VM
GET    /vms/{name}/metadata    what the VM would get from the metadata listener for a
                               path (fleet/preview.py), and the fields its version lacks
GET    /vms/{name}/metadata/versions    the api-versions a preview may ask for

Bodies are validated like the configuration file, with the same messages (field path
and what is allowed). A change is served at once and drops only that VM's cached answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.config.report import Sources, format_errors
from openimds.config.vm_model import VmSpec
from openimds.core.app import build_dispatcher
from openimds.core.versions import GENERAL_VERSIONS, LATEST
from openimds.fleet.catalog import RATE_WINDOW, Card, Catalog, parse_query
from openimds.fleet.preview import MetadataPreview, absent_fields
from openimds.inventory.live import UnknownVm
from openimds.inventory.stored import StoredInventory
from openimds.web.admin_app import json_body
from openimds.web.admin_errors import AdminError
from openimds.web.metadata.request_ring import RequestRing

VM_KEYS = frozenset(VmSpec.model_fields)


class VmInputError(AdminError, ValueError):
    """A request body that is not a valid VM (or list of VMs); worded like config errors."""


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


def view(stored: StoredInventory, name: str) -> dict[str, Any]:
    inventory = stored.live
    return {"name": name, "revision": inventory.vms[name].revision, **inventory.view(name)}


@dataclass
class FleetAdmin:
    stored: StoredInventory
    request_ring: RequestRing | None = None  # the request journal, for summaries' rates
    # Default: the standard endpoints at wall time (a server passes its own).
    preview: InitVar[MetadataPreview | None] = None
    previews: MetadataPreview = field(init=False)
    catalog: Catalog = field(init=False)

    def __post_init__(self, preview: MetadataPreview | None) -> None:
        inventory = self.stored.live
        self.catalog = Catalog(inventory)
        self.previews = preview or MetadataPreview(inventory, build_dispatcher, time.time)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/vms", self.list_vms, methods=["GET"]),
            Route("/vms/{name}/metadata", self.metadata, methods=["GET"]),
            Route("/vms/{name}/metadata/versions", self.versions, methods=["GET"]),
            Route("/vms", self.import_vms, methods=["POST"]),
            Route("/vms/remove", self.remove_many, methods=["POST"]),
            Route("/vms/{name}", self.one, methods=["GET"]),
            Route("/vms/{name}", self.put, methods=["PUT"]),
            Route("/vms/{name}", self.delete, methods=["DELETE"]),
        ]

    def public_paths(self) -> list[str]:
        return []

    def errors(self) -> Mapping[type[Exception], int]:
        return {}

    async def list_vms(self, request: Request) -> Response:
        """
        parameters:
          - {name: q, in: query, schema: {type: string},
             description: "Case-insensitive substring of name, vmId, computerName,
               resource group, a tag key or value, an address or the scale set"}
          - {name: tag, in: query, schema: {type: string},
             description: "key (any value) or key=value; repeatable, all must match"}
          - {name: scale_set, in: query, schema: {type: string}}
          - {name: address, in: query, schema: {type: string}, description: exact}
          - {name: offset, in: query, schema: {type: integer, minimum: 0, default: 0}}
          - {name: limit, in: query, schema: {type: integer, minimum: 0},
             description: "Default: every match"}
          - {name: view, in: query, schema: {type: string, enum: [full, summary]},
             description: "full (default): each VM as a VM file holds it; summary: rows"}
        responses:
          200:
            description: The matching VMs sorted by name, one page of them; total counts
              every match.
            content:
              application/json:
                schema:
                  type: object
                  required: [vms, total, offset, limit]
                  properties:
                    vms: {type: array, items: {type: object}}
                    total: {type: integer}
                    offset: {type: integer}
                    limit: {type: integer, nullable: true}
          400:
            description: offset or limit is not a whole number, or view is unknown.
        """
        query = parse_query(request.query_params.multi_items())
        cards, total = self.catalog.search(query)
        if query.view == "summary":
            vms = self._summaries(cards)
        else:
            vms = [view(self.stored, card.name) for card in cards]
        page = {"total": total, "offset": query.offset, "limit": query.limit}
        return JSONResponse({"vms": vms, **page})

    def _summaries(self, cards: list[Card]) -> list[dict[str, object]]:
        request_ring = self.request_ring
        if request_ring is None:
            return [card.summary(None) for card in cards]
        since = time.time() - RATE_WINDOW  # the journal's clock: wall time
        return [card.summary(request_ring.recent(card.name, since)) for card in cards]

    async def metadata(self, request: Request) -> Response:
        """
        parameters:
          - {name: path, in: query,
             schema: {type: string, default: /metadata/instance, pattern: "^/metadata(/[^?#]*)?$"},
             description: "A metadata path, e.g. /metadata/instance/compute/vmSize"}
          - {name: api-version, in: query, schema: {type: string}}
          - {name: format, in: query, schema: {type: string}, description: json or text}
        responses:
          200:
            description: What the VM gets for GET path?api-version&format with Metadata
              true (its status and body, errors included), without taking its budget,
              journaling or fault rules; absent lists the fields of the newest
              api-version's full instance document that this version leaves out.
            content:
              application/json:
                schema:
                  type: object
                  required: [status, contentType, body, absent]
                  properties:
                    status: {type: integer}
                    contentType: {type: string}
                    body: {type: string}
                    absent: {type: array, items: {type: string}}
          400:
            description: The path is not a /metadata path, or is the token endpoint.
          404:
            description: No VM has this name.
        """
        vm = self.stored.live.snapshot(request.path_params["name"])
        params = request.query_params
        path = params.get("path", "/metadata/instance")
        wanted = [(key, params[key]) for key in ("api-version", "format") if key in params]
        asked = self.previews.request(vm, path, wanted)
        answer = self.previews.answer(vm, asked)
        return JSONResponse(
            {
                "status": answer.status,
                "contentType": answer.content_type,
                "body": answer.body.decode("utf-8", "replace"),
                "absent": absent_fields(vm, asked, answer),
            }
        )

    async def versions(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The api-versions the metadata listener accepts, newest first.
            content:
              application/json:
                schema:
                  type: object
                  required: [versions, newest]
                  properties:
                    versions: {type: array, items: {type: string}}
                    newest: {type: string}
          404:
            description: No VM has this name.
        """
        self.stored.live.snapshot(request.path_params["name"])
        return JSONResponse({"versions": list(reversed(GENERAL_VERSIONS)), "newest": LATEST})

    async def import_vms(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: "One VM, or {vms: [...]}, as a VM file holds them"
                required: [name]
                additionalProperties: false
                properties:
                  name: {type: string, minLength: 1}
                  addresses:
                    type: array
                    items: {type: string, anyOf: [{format: ipv4}, {format: ipv6}]}
                  instance:
                    type: object
                    additionalProperties: false
                    properties:
                      compute: {type: object}
                      network: {type: object}
                  identities: {type: object, nullable: true}
        parameters:
          - {name: prune, in: query, schema: {type: string, enum: ["true", "false"]},
             description: "true: the VMs the body does not name are removed, in the same
               store batch, so the inventory matches the body"}
        responses:
          200:
            description: The VMs were added or replaced by name (all or none); with
              prune, removed lists what it removed.
            content:
              application/json:
                schema:
                  type: object
                  required: [changed, unchanged]
                  properties:
                    changed: {type: array, items: {type: string}}
                    unchanged: {type: array, items: {type: string}}
                    removed: {type: array, items: {type: string}}
          400:
            description: The body is not a valid VM file (the error names the field).
          409:
            description: "Another VM holds an address or the vmId (the error names it and the VM
              holding it), or the VMs lack the addresses a fleet needs; nothing was written."
        """
        prune = request.query_params.get("prune", "false")
        if prune not in ("true", "false"):
            raise VmInputError(f"prune: expected true or false, got {prune!r}")
        specs = parse_vms(await json_body(request))
        named = {s.display_name: s for s in specs}
        removed = self.stored.pruned(named) if prune == "true" else []
        changed = self.stored.upsert(specs, prune=prune == "true")
        unchanged = sorted(set(named) - set(changed))
        answer = {"changed": sorted(changed), "unchanged": unchanged}
        if prune == "true":
            answer["removed"] = removed
        return JSONResponse(answer)

    async def remove_many(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [names]
                additionalProperties: false
                properties:
                  names:
                    type: array
                    minItems: 1
                    items: {type: string, minLength: 1}
        responses:
          200:
            description: Every named VM was removed, in one store batch.
            content:
              application/json:
                schema:
                  type: object
                  required: [removed]
                  properties:
                    removed: {type: array, items: {type: string}}
          400:
            description: 'The body is not {"names": [...]} with at least one name.'
          404:
            description: A name is unknown; nothing was removed.
          409:
            description: The fleet would lack the addresses it needs.
        """
        names = _names(await json_body(request))
        return JSONResponse({"removed": self.stored.remove(names, every=True)})

    async def one(self, request: Request) -> Response:
        """
        responses:
          200:
            description: One VM.
          404:
            description: No VM has this name.
        """
        name = request.path_params["name"]
        if name not in self.stored.live.texts:
            raise UnknownVm(name)
        return JSONResponse(view(self.stored, name))

    async def put(self, request: Request) -> Response:
        """
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                description: A VM as a VM file holds it (docs/configuration.md); its name is
                  the path's (a name in the body must be the same)
                additionalProperties: false
                properties:
                  addresses:
                    type: array
                    items: {type: string, anyOf: [{format: ipv4}, {format: ipv6}]}
                  instance:
                    type: object
                    additionalProperties: false
                    properties:
                      compute: {type: object}
                      network: {type: object}
                  identities: {type: object, nullable: true}
        responses:
          200:
            description: The VM was replaced (changed true) or was already so (changed false).
          201:
            description: The VM was added (changed true).
          400:
            description: The body is not a valid VM, or names another VM.
          409:
            description: "Another VM holds an address or the vmId (the error names it and the VM
              holding it), or the fleet would lack addresses; nothing was written."
          412:
            description: If-None-Match or If-Match did not hold in the state store; nothing
              was written.
        """
        name = request.path_params["name"]
        data = await json_body(request)
        if isinstance(data, dict) and "vms" not in data and data.get("name", "") == "":
            data = {**data, "name": name}
        specs = parse_vms(data)
        if len(specs) != 1 or specs[0].display_name != name:
            raise VmInputError(f"request body: expected the one VM named {name}")
        condition = _condition(request)
        exists = name in self.stored.live.texts if condition is None else condition
        changed = bool(self.stored.upsert(specs, exists=condition))
        answer = {**view(self.stored, name), "changed": changed}
        return JSONResponse(answer, status_code=200 if exists else 201)

    async def delete(self, request: Request) -> Response:
        """
        responses:
          200:
            description: The VM was removed.
          404:
            description: No VM has this name.
        """
        name = request.path_params["name"]
        if not self.stored.remove([name]):
            raise UnknownVm(name)
        return JSONResponse({"name": name, "removed": True})


def _names(data: Any) -> list[str]:
    """The names of a bulk remove's body, or a VmInputError saying what is wrong."""
    if not isinstance(data, dict) or set(data) != {"names"}:
        raise VmInputError('request body: expected {"names": [NAME, ...]}')
    names = data["names"]
    if not isinstance(names, list) or not names:
        raise VmInputError("request body: names: expected a list of at least one name")
    if not all(isinstance(name, str) and name for name in names):
        raise VmInputError("request body: names: every name must be a non-empty string")
    return names


def _condition(request: Request) -> bool | None:
    """What the write requires of the VM in the store: False, that it does not exist
    (If-None-Match: *); True, that it does (If-Match: *); None, nothing."""
    if request.headers.get("if-none-match") == "*":
        return False
    if request.headers.get("if-match") == "*":
        return True
    return None
