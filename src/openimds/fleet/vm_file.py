"""VM files as the `vm` commands read and write them: the configuration file's VM format
(one VM's keys at the top, or a `vms` list), in YAML or JSON.

Reading only parses and checks the shape; the fields are validated by the server, which
words its errors as the configuration file's are. A whole configuration file may be
given: its settings sections are not VMs and are left out (the caller says so).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from openimds.config import ConfigError
from openimds.config.loading import VM_KEYS, normalise, read_document
from openimds.config.model import Config
from openimds.config.vm_model import Compute

# The configuration's sections that are settings, not VMs.
SETTINGS = frozenset(Config.model_fields) - {"vms"}
# libyaml's emitter where PyYAML was built with it: a 1,000-VM export in a fraction of
# the pure-Python emitter's time.
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def label(path: str) -> str:
    """How messages name a VM file: `-` is standard input."""
    return "stdin" if path == "-" else path


def read_vms(path: str) -> tuple[dict[str, Any], list[str]]:
    """The file's VMs as the admin API takes them (the file's own shape, so the server's
    error paths match the file), and the settings sections left out. ConfigError (one
    line naming the file) when it cannot be read, parsed, or holds no VM."""
    data = read_document(path)
    path = label(path)
    if not isinstance(data, dict):
        got = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: expected one VM's fields or a `vms` list, got {got}")
    ignored = sorted(key for key in data if key in SETTINGS)
    payload = {key: value for key, value in data.items() if key not in SETTINGS}
    normalise(payload, path)  # one VM's keys and a `vms` list together: the file's error
    if not payload or ("vms" in payload and not payload["vms"]):
        raise ConfigError(f"{path}: holds no VM (give one VM's fields or a `vms` list)")
    return payload, ignored


def vms_in(payload: dict[str, Any]) -> list[Any]:
    """The VMs of a file read by `read_vms`, as given."""
    if "vms" in payload:
        vms = payload["vms"]
        return vms if isinstance(vms, list) else [vms]
    return [payload]


def name_of(vm: Any) -> str:
    """The name the server will give a VM: `name`, else compute.name, else compute.vmId
    (as `VmSpec.display_name`); "" when the file gives none."""
    if not isinstance(vm, dict):
        return ""
    instance = vm.get("instance")
    compute = instance.get("compute") if isinstance(instance, dict) else None
    compute = compute if isinstance(compute, dict) else {}
    for value in (vm.get("name"), compute.get("name"), compute.get("vmId")):
        if isinstance(value, str | int) and str(value):
            return str(value)
    return ""


def as_file(
    view: dict[str, Any], effective: dict[str, Any] | None = None, vm_id: str | None = None
) -> dict[str, Any]:
    """One VM of the admin API's answer as a VM file holds it: without its revision,
    which is the server's, not the VM's; with `effective` (the VM's identities as
    `GET /identity/vms` gives them), its identities with every id the server uses; with
    `vm_id` (the one served), that vmId where the file gave none (it was generated)."""
    data = {key: value for key, value in view.items() if key in VM_KEYS}
    if effective is not None and isinstance(data.get("identities"), dict):
        data["identities"] = _with_ids(data["identities"], effective)
    instance = data.get("instance", {})
    compute = instance.get("compute", {}) if isinstance(instance, dict) else None
    if vm_id and isinstance(compute, dict) and not compute.get("vmId"):
        # In the model's field order, as a server shows the VM once imported.
        with_id = {**compute, "vmId": vm_id}
        order = {field: i for i, field in enumerate(Compute.model_fields)}
        ordered = dict(sorted(with_id.items(), key=lambda item: order.get(item[0], len(order))))
        data["instance"] = {**instance, "compute": ordered}
    return data


def _with_ids(given: dict[str, Any], effective: dict[str, Any]) -> dict[str, Any]:
    """The identities block with the ids the server generated filled in. A generated id
    lives in one server's state store: without it in the file, a server importing the VM
    would generate others, and the VM's tokens would name other principals."""
    # The model's order (tenantId first), as a server shows an imported block.
    block = {"tenantId": effective["tenantId"], **given}
    block["tenantId"] = effective["tenantId"]
    system = effective.get("systemAssigned")
    if given.get("systemAssigned") is not None and system is not None:
        block["systemAssigned"] = {
            **given["systemAssigned"],
            "clientId": system["clientId"],
            "objectId": system["objectId"],
        }
    users = effective.get("userAssigned") or []
    if len(users) == len(given.get("userAssigned") or []):
        block["userAssigned"] = [
            {**user, **{key: ids[key] for key in ("clientId", "objectId", "resourceId")}}
            for user, ids in zip(given["userAssigned"], users, strict=True)
        ]
    return block


def dump(data: dict[str, Any], as_json: bool) -> str:
    """A VM file's text: JSON, or YAML in the file's own key order."""
    if as_json:
        return json.dumps(data, indent=2) + "\n"
    text: str = yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True)
    return text
