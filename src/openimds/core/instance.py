"""The instance document of one api-version, and route filtering over it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openimds.core.errors import NotFound
from openimds.core.instance_fields import OMIT_WHEN_EMPTY, introduced
from openimds.core.versions import GENERAL_VERSIONS

# JSON as the instance API knows it: every leaf is a string, numbers and booleans too.
Node = str | Mapping[str, "Node"] | Sequence["Node"]

# 2017-03-01 was the preview of the 2017-04-02 schema; serve it with that field set.
_OLDEST_SCHEMA = "2017-04-02"


def fields_version(api_version: str) -> str:
    """The api-version whose field set a request gets (2017-03-01 gets 2017-04-02's)."""
    return max(api_version, _OLDEST_SCHEMA)


def gate(document: Mapping[str, Node], api_version: str) -> dict[str, Node]:
    """The document with only the fields that `api_version` knows. Azure does not document
    leaving newer fields out; we infer it (docs/compatibility.md)."""
    version = fields_version(api_version)
    return _gate_object(document, "", GENERAL_VERSIONS[0], version)


def _gate_object(
    obj: Mapping[str, Node], prefix: str, inherited: str, version: str
) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for key in sorted(obj):
        path = f"{prefix}.{key}" if prefix else key
        since = introduced(path, inherited)
        if since > version:
            continue
        value = obj[key]
        if path in OMIT_WHEN_EMPTY and value == "":
            continue
        out[key] = _gate_node(value, path, since, version)
    return out


def _gate_node(node: Node, path: str, inherited: str, version: str) -> Node:
    if isinstance(node, str):
        return node
    if isinstance(node, Mapping):
        return _gate_object(node, path, inherited, version)
    return [_gate_node(item, f"{path}[]", inherited, version) for item in node]


def absent(newest: Node, served: Node, prefix: str = "") -> list[str]:
    """The fields `newest` has and `served` leaves out, as dotted paths (array items as
    `[]`, as in instance_fields), outermost only: a section an older api-version does not
    know is one path, not one per field inside it. Each path once, in document order."""
    found: list[str] = []
    if isinstance(newest, Mapping) and isinstance(served, Mapping):
        for key, value in newest.items():
            path = f"{prefix}.{key}" if prefix else key
            if key not in served:
                found.append(path)
            else:
                found.extend(absent(value, served[key], path))
    elif not isinstance(newest, str | Mapping) and not isinstance(served, str | Mapping):
        for new_item, old_item in zip(newest, served, strict=False):
            found.extend(absent(new_item, old_item, f"{prefix}[]"))
    return list(dict.fromkeys(found))


def walk(document: Node, route: Sequence[str]) -> Node:
    """Follow route filters: object keys by name, array items by 0-based index."""
    node = document
    for segment in route:
        if isinstance(node, Mapping):
            if segment not in node:
                raise NotFound()
            node = node[segment]
        elif isinstance(node, str):
            raise NotFound()
        else:
            node = node[_index(segment, len(node))]
    return node


def _index(segment: str, length: int) -> int:
    """An array index written canonically: ASCII digits, no sign, no leading zero
    (Azure is silent on this; docs/compatibility.md). `str.isdigit` alone would pass "²"
    on to int()."""
    digits = segment.isascii() and segment.isdigit()
    if not digits or (segment[0] == "0" and segment != "0") or len(segment) > len(str(length)):
        raise NotFound()
    index = int(segment)
    if index >= length:
        raise NotFound()
    return index
