"""The inventory kept in the state store, applied to the LiveInventory without a restart.

At start the store's VMs and the configuration's are merged (the configuration's win and
are written to the store); the built-in demo VM is used only when neither has any. Every
change is written to the store first, then applied, so a failed write changes nothing.
With a shared store, other nodes' changes arrive through `follow` (the store's change
feed) and are applied the same way. VMs move as record text (inventory/records.py): what
the store holds is served without being validated again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from openimds.config import ConfigError
from openimds.config.loading import demo_vm
from openimds.config.vm_model import VmSpec
from openimds.inventory import records
from openimds.inventory.live import InventoryError, LiveInventory, check_servable
from openimds.store import Delete, Put, Store

log = logging.getLogger("openimds.fleet")


class StoredInventory:
    def __init__(self, store: Store, live: LiveInventory) -> None:
        self.store = store
        self.live = live
        # The demo VM served while the inventory is empty: never stored, and gone as soon
        # as a real VM arrives (it has no addresses, so it could not share a inventory).
        self.placeholders: set[str] = set()

    def start(self, configured: Sequence[VmSpec], fallback: Sequence[VmSpec] = ()) -> None:
        """Load the store's VMs, write the configured ones over them, and serve the lot;
        `fallback` (the demo VM) only when neither names any VM."""
        stored = dict(self.store.list_records(records.KIND))
        # The configuration's VMs in its order, then those only the store has.
        merged = {spec.display_name: records.encode(spec) for spec in configured}
        changed = {name: text for name, text in merged.items() if stored.get(name) != text}
        for name, text in stored.items():
            merged.setdefault(name, text)
        if not merged:
            self.live.replace(fallback)
            self.placeholders = {spec.display_name for spec in fallback}
            return
        self.live.replace_texts(merged)  # checks the lot before anything is written
        self._write(changed, ())

    def upsert(self, specs: Sequence[VmSpec]) -> list[str]:
        """Add or replace VMs by name (all or none); the names whose data changed."""
        texts = {spec.display_name: records.encode(spec) for spec in specs}
        changed = {n: t for n, t in texts.items() if self.live.texts.get(n) != t}
        addresses = {
            name: vm.addresses
            for name, vm in self.live.vms.items()
            if name not in self.placeholders or name in texts
        }
        addresses.update({s.display_name: tuple(str(a) for a in s.addresses) for s in specs})
        check_servable(addresses, self.live.addresses_required)
        self._write(changed, ())
        self._drop_placeholders(keep=set(texts))
        return self.live.put_texts(changed)

    def remove(self, names: Sequence[str]) -> list[str]:
        present = [name for name in names if name in self.live.texts]
        kept = {n: vm.addresses for n, vm in self.live.vms.items() if n not in present}
        check_servable(kept, self.live.addresses_required)
        self._write({}, present)
        return self.live.remove(present)

    def follow(self, key: str) -> None:
        """Another node changed VM `key` ("*": anything): bring the LiveInventory in line."""
        if key == "*":
            self.live.replace_texts(dict(self.store.list_records(records.KIND)))
            return
        text = self.store.get_record(records.KIND, key)
        if text is None:
            self.live.remove([key])
        else:
            self._drop_placeholders(keep={key})
            self.live.put_texts({key: text})

    def _drop_placeholders(self, keep: set[str]) -> None:
        """The first real VM replaces the demo VM (unless it is the demo VM, edited)."""
        if self.placeholders:
            self.live.remove([name for name in self.placeholders if name not in keep])
            self.placeholders = set()

    def _write(self, texts: Mapping[str, str], removed: Sequence[str]) -> None:
        ops: list[Put | Delete] = [Put(records.KIND, name, text) for name, text in texts.items()]
        ops.extend(Delete(records.KIND, name) for name in removed)
        if ops:
            self.store.write_batch(ops)


def start_inventory(store: Store, live: LiveInventory, vms: Sequence[VmSpec]) -> StoredInventory:
    """The VMs of the store and of the configuration (`vms`), served by `live`; the
    built-in demo VM when neither has any. ConfigError when they cannot be served."""
    stored = StoredInventory(store, live)
    demo = VmSpec.model_validate(demo_vm())
    # Without a VM file the built-in demo VM is served, unless the store holds VMs.
    configured = [] if list(vms) == [demo] else list(vms)
    try:
        stored.start(configured, fallback=[demo])
    except InventoryError as exc:
        raise ConfigError(f"the VMs of the configuration and the state store: {exc}") from None
    return stored
