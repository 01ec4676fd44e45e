"""How a VM is kept in the state store: its VM-file JSON under the kind `vm`, by name."""

from __future__ import annotations

import json

from pydantic import ValidationError

from openimds.config.vm_model import VmSpec
from openimds.store import CorruptRecord, decoding

KIND = "vm"


def encode(spec: VmSpec) -> str:
    """The VM as a VM file holds it (the same JSON `vm export` prints)."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def decode(name: str, text: str) -> VmSpec:
    with decoding(KIND, name):
        data = json.loads(text)
    try:
        return VmSpec.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise CorruptRecord(KIND, name, f"{where}: {problem['msg']}") from None
