"""What the core knows of a VM: an immutable snapshot, replaced whole on every change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from openimds.core.instance import Node, fields_version, gate


@dataclass(frozen=True, slots=True)
class VmSnapshot:
    """One VM as served. `instance` is the full document at the newest api-version;
    `revision` changes whenever anything in the snapshot does, which is what lets the
    HTTP adapter cache rendered bytes without ever serving stale ones."""

    id: str
    name: str
    revision: int
    instance: Mapping[str, Node]
    loadbalancer: Mapping[str, object] | None = None
    addresses: tuple[str, ...] = ()
    _by_schema: dict[str, dict[str, Node]] = field(default_factory=dict, compare=False)

    def document(self, api_version: str) -> dict[str, Node]:
        """The instance document for an api-version, gated once and then memoised."""
        key = fields_version(api_version)
        doc = self._by_schema.get(key)
        if doc is None:
            doc = gate(self.instance, key)
            self._by_schema[key] = doc
        return doc

    @property
    def compute(self) -> Mapping[str, Node]:
        value = self.instance.get("compute", {})
        return value if isinstance(value, Mapping) else {}
