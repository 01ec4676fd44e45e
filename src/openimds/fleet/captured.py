"""What `openimds capture` recorded, turned into a VM file (pure: no I/O).

A capture holds the instance document, userData, the load balancer document, the tenant
of /metadata/identity/info and, per identity, the ids a token's claims carry. Only ids
are kept: the token itself is decoded and dropped where it was received (capture.py).

The VM file must be one `vm import` accepts, so what the VM model does not know (a
field Azure added after this release, a value it refuses) is left out, with a note for
each; an identity is told system- or user-assigned by its `xms_mirid` (a user-assigned
identity's is its own ARM id, a system-assigned one's is the VM's).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from openimds.config.identity_model import check_guid
from openimds.config.vm_model import Instance, LoadBalancer

_USER_ASSIGNED = "/providers/microsoft.managedidentity/userassignedidentities/"
_PRUNE_ROUNDS = 20  # each round drops at least one field; real documents need one or two


class NotAToken(ValueError):
    """An access_token whose claims cannot be read (the message never holds the token)."""


@dataclass(frozen=True, slots=True)
class IdentityClaims:
    """The ids a managed identity's token carries."""

    tenant_id: str  # tid
    object_id: str  # oid
    client_id: str  # appid
    resource_id: str  # xms_mirid

    @property
    def user_assigned(self) -> bool:
        return _USER_ASSIGNED in self.resource_id.lower()


@dataclass
class Capture:
    """A VM's answers; None where a part was not captured."""

    instance: dict[str, Any]
    user_data: str | None = None
    loadbalancer: dict[str, Any] | None = None
    tenant_id: str | None = None
    identities: list[IdentityClaims] = field(default_factory=list)


def claims_of(token: str) -> IdentityClaims:
    """The ids in a JWT's payload, read WITHOUT verifying its signature: the capture
    only records which principal the VM's identity is, never trusts the token."""
    parts = token.split(".")
    if len(parts) != 3:
        raise NotAToken("the access token is not a JWT (three dot-separated parts)")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as exc:
        raise NotAToken("the access token's payload is not base64url JSON") from exc
    if not isinstance(payload, dict):
        raise NotAToken("the access token's payload is not a JSON object")

    def claim(name: str) -> str:
        value = payload.get(name)
        return value if isinstance(value, str) else ""

    return IdentityClaims(claim("tid"), claim("oid"), claim("appid"), claim("xms_mirid"))


def vm_file(
    capture: Capture, name: str = "", addresses: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """The VM file (one VM's keys at the top) and notes on what was left out."""
    notes: list[str] = []
    instance = prune(Instance, capture.instance, "instance", notes)
    if capture.user_data is not None:
        compute = instance.setdefault("compute", {})
        if isinstance(compute, dict):
            compute["userData"] = capture.user_data
    compute = instance.get("compute")
    default = compute.get("name", "") if isinstance(compute, dict) else ""
    data: dict[str, Any] = {"name": name or default or "captured-vm"}
    if addresses:
        data["addresses"] = list(addresses)
    if capture.loadbalancer is not None:
        data["loadbalancer"] = prune(LoadBalancer, capture.loadbalancer, "loadbalancer", notes)
    identities = identities_block(capture, notes)
    if identities:
        data["identities"] = identities
    data["instance"] = instance
    return data, notes


def identities_block(capture: Capture, notes: list[str]) -> dict[str, Any]:
    """The `identities` of the VM file: tenant, the system-assigned identity's ids, and
    each user-assigned one's (the same identity seen twice is kept once)."""
    tenants = [capture.tenant_id or ""] + [ids.tenant_id for ids in capture.identities]
    tenant = next((t for t in tenants if _is_guid(t)), "")
    block: dict[str, Any] = {"tenantId": tenant} if tenant else {}
    seen: set[str] = set()
    for ids in capture.identities:
        if not _usable(ids, notes) or ids.client_id.lower() in seen:
            continue
        seen.add(ids.client_id.lower())
        one = {"clientId": ids.client_id, "objectId": ids.object_id}
        if ids.user_assigned:
            block.setdefault("userAssigned", []).append({**one, "resourceId": ids.resource_id})
        elif "systemAssigned" not in block:
            block["systemAssigned"] = one
    return block if set(block) - {"tenantId"} else {}


def _usable(ids: IdentityClaims, notes: list[str]) -> bool:
    if _is_guid(ids.client_id) and _is_guid(ids.object_id):
        return True
    notes.append(f"identity {ids.client_id or '?'}: its token carries no appid/oid GUIDs; skipped")
    return False


def _is_guid(value: str) -> bool:
    try:
        return bool(check_guid(value))
    except ValueError:
        return False


def prune(
    model: type[BaseModel], data: dict[str, Any], where: str, notes: list[str]
) -> dict[str, Any]:
    """`data` without the fields `model` refuses (unknown, or a value it does not
    accept), one note each; what cannot be pruned is left for the import to report."""
    kept: dict[str, Any] = json.loads(json.dumps(data))  # a deep copy of plain JSON
    for _ in range(_PRUNE_ROUNDS):
        try:
            model.model_validate(kept)
            return kept
        except ValidationError as exc:
            dropped = [_drop(kept, err, where) for err in exc.errors()]
        found = [note for note in dropped if note]
        if not found:
            break
        notes.extend(found)
    return kept


def _drop(data: dict[str, Any], err: Any, where: str) -> str:
    """Remove the field an error is about; a note, or "" when it is not a leaf field
    (a rule over several fields, which removing a whole section would not fix well)."""
    loc = tuple(err["loc"])
    parent: Any = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return ""
    key = loc[-1] if loc else None
    unknown = err["type"] == "extra_forbidden"
    if not isinstance(parent, dict) or key not in parent:
        return ""
    if isinstance(parent[key], dict | list) and not unknown:
        return ""
    del parent[key]
    path = ".".join([where, *(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)])
    path = path.replace(".[", "[")
    reason = "not in openimds' VM model" if unknown else str(err["msg"])
    return f"left out {path}: {reason.removeprefix('Value error, ')}"
