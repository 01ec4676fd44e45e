"""The inventory kept in the state store, applied to the live Fleet without a restart.

At start the store's VMs and the configuration's are merged (the configuration's win and
are written to the store); the built-in demo VM is used only when neither has any. Every
change is written to the store first, then applied, so a failed write changes nothing.
With a shared store, other nodes' changes arrive through `follow` (the store's change
feed) and are applied the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from openimds.config.vm_model import VmSpec
from openimds.fleet import records
from openimds.fleet.inventory import Fleet, check_servable
from openimds.store import Delete, Put, Store

log = logging.getLogger("openimds.fleet")


class Inventory:
    def __init__(self, store: Store, fleet: Fleet) -> None:
        self.store = store
        self.fleet = fleet

    def start(self, configured: Sequence[VmSpec], fallback: Sequence[VmSpec] = ()) -> None:
        """Load the store's VMs, write the configured ones over them, and serve the lot;
        `fallback` (the demo VM) only when neither names any VM."""
        stored = self.stored()
        # The configuration's VMs in its order, then those only the store has.
        merged = {spec.display_name: spec for spec in configured}
        for name, spec in stored.items():
            merged.setdefault(name, spec)
        if not merged:
            merged = {spec.display_name: spec for spec in fallback}
        else:
            changed = [s for s in configured if stored.get(s.display_name) != s]
            check_servable(merged, self.fleet.addresses_required)
            self._write(changed, ())
        self.fleet.replace(merged.values())

    def stored(self) -> dict[str, VmSpec]:
        return {
            name: records.decode(name, text) for name, text in self.store.list_records(records.KIND)
        }

    def upsert(self, specs: Sequence[VmSpec]) -> list[str]:
        """Add or replace VMs by name (all or none); the names whose data changed."""
        merged = {**self.fleet.specs, **{s.display_name: s for s in specs}}
        check_servable(merged, self.fleet.addresses_required)
        changed = [s for s in specs if self.fleet.specs.get(s.display_name) != s]
        self._write(changed, ())
        return self.fleet.put(specs)

    def remove(self, names: Sequence[str]) -> list[str]:
        present = [name for name in names if name in self.fleet.specs]
        remaining = {n: s for n, s in self.fleet.specs.items() if n not in present}
        check_servable(remaining, self.fleet.addresses_required)
        self._write((), present)
        return self.fleet.remove(present)

    def follow(self, key: str) -> None:
        """Another node changed VM `key` ("*": anything): bring the Fleet in line."""
        if key == "*":
            self.fleet.replace(self.stored().values())
            return
        text = self.store.get_record(records.KIND, key)
        if text is None:
            self.fleet.remove([key])
        else:
            self.fleet.put([records.decode(key, text)])

    def _write(self, specs: Sequence[VmSpec], removed: Sequence[str]) -> None:
        ops: list[Put | Delete] = [
            Put(records.KIND, s.display_name, records.encode(s)) for s in specs
        ]
        ops.extend(Delete(records.KIND, name) for name in removed)
        if ops:
            self.store.write_batch(ops)
