"""How a VM is kept in the state store: its VM-file JSON under the kind `vm`, by name."""

from __future__ import annotations

import json

from pydantic import ValidationError

from openimds.config.vm_model import VmSpec
from openimds.store import StoreError

KIND = "vm"


def encode(spec: VmSpec) -> str:
    """The VM as a VM file holds it (the same JSON `vm export` prints)."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def decode(name: str, text: str) -> VmSpec:
    try:
        return VmSpec.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise StoreError(f"corrupt {KIND} record {name}: {first}") from None
