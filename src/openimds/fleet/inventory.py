"""The live inventory: VM snapshots by id, and who is calling. Replaced whole on change."""

from __future__ import annotations

from collections.abc import Iterable

from openimds.config.vm_model import VmSpec
from openimds.core.caller import CallerResolver
from openimds.core.inventory import VmSnapshot


def snapshot_of(spec: VmSpec, revision: int) -> VmSnapshot:
    lb = spec.loadbalancer
    return VmSnapshot(
        id=spec.display_name,
        name=spec.display_name,
        revision=revision,
        instance=spec.instance.model_dump(),
        loadbalancer=None if lb is None else lb.model_dump(exclude_none=True),
        addresses=tuple(str(a) for a in spec.addresses),
    )


class Fleet:
    """Readers get immutable snapshots; a change swaps in new ones with a new revision,
    which is what invalidates every cached rendering of the VM."""

    def __init__(self, specs: Iterable[VmSpec]) -> None:
        self._revision = 0
        self.vms: dict[str, VmSnapshot] = {}
        self.specs: dict[str, VmSpec] = {}
        self.resolver = CallerResolver(())
        self.replace(specs)

    def replace(self, specs: Iterable[VmSpec]) -> None:
        self._revision += 1
        self.specs = {spec.display_name: spec for spec in specs}
        self.vms = {name: snapshot_of(s, self._revision) for name, s in self.specs.items()}
        self.resolver = CallerResolver(self.vms.values())

    def for_peer(self, peer: str) -> VmSnapshot | None:
        vm_id = self.resolver.resolve(peer)
        return None if vm_id is None else self.vms.get(vm_id)
