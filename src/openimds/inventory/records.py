"""How a VM is kept in the state store and in memory: JSON text under the kind `vm`.

The text holds what the VM file gave (unset fields left out) plus the full `instance`
and `loadbalancer` documents as served, so a snapshot is built from it with one
`orjson.loads` and no validation: a fleet of thousands of VMs starts, and follows other
nodes' changes, without re-validating every VM. Only text this module wrote (from a
validated VmSpec) is ever stored.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from pydantic import ValidationError

from openimds.config.identity_model import Identities
from openimds.config.vm_model import VmSpec
from openimds.store import CorruptRecord, decoding

KIND = "vm"
_SERVED = {"instance", "loadbalancer"}


def encode(spec: VmSpec) -> str:
    """The VM's record: compact, in a stable order, so equal VMs have equal text."""
    given = spec.model_dump_json(exclude_unset=True, exclude=_SERVED)
    parts = [given[1:-1]] if given != "{}" else []
    parts.append('"instance":' + spec.instance.model_dump_json())
    if spec.loadbalancer is not None:
        parts.append('"loadbalancer":' + spec.loadbalancer.model_dump_json(exclude_none=True))
    return "{" + ",".join(parts) + "}"


def raw(name: str, text: str) -> dict[str, Any]:
    """The record as plain data (what snapshots and admin views are built from)."""
    with decoding(KIND, name):
        # orjson: a large fleet's records are read at every start (several times faster).
        data = orjson.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("instance"), dict):
            raise ValueError("not a VM record (no instance document)")
    return data


def decode(name: str, text: str) -> VmSpec:
    """The validated VM (for the features that need its model, on demand)."""
    data = raw(name, text)
    try:
        return VmSpec.model_validate(data)
    except ValidationError as exc:
        raise _corrupt(name, exc) from None


def identities_of(name: str, block: Any) -> Identities:
    """A VM's `identities` block (as its record holds it), validated: what token issuing
    needs of a VM. Equal blocks (most of a fleet's: `systemAssigned: true`) are validated
    once; the models are frozen, so VMs share them."""
    try:
        return _identities(orjson.dumps(block))
    except ValidationError as exc:
        raise _corrupt(name, exc) from None


@functools.lru_cache(maxsize=256)
def _identities(text: bytes) -> Identities:
    return Identities.model_validate(orjson.loads(text))


def _corrupt(name: str, exc: ValidationError) -> CorruptRecord:
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return CorruptRecord(KIND, name, f"{where}: {problem['msg']}")


def readable(data: dict[str, Any]) -> dict[str, Any]:
    """A record as a person reads it (admin views, `vm export`): the instance document
    without its empty strings, lists and mappings, since a VM file gives every instance
    field left out Azure's empty value. (Elsewhere empty is not the same as absent: an
    empty `systemAssigned` mapping turns the identity on.)"""
    pruned = _prune(data["instance"])
    out = {k: v for k, v in data.items() if k != "instance"}
    if pruned:
        out["instance"] = pruned
    return out


def _prune(data: Any) -> Any:
    if isinstance(data, dict):
        kept = {k: _prune(v) for k, v in data.items()}
        return {k: v for k, v in kept.items() if v not in ("", [], {})}
    if isinstance(data, list):
        return [_prune(item) for item in data]
    return data
