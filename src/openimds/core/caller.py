"""Which VM is asking: maps a request's source to a VM id (DESIGN.md, caller resolution).

One VM: every caller is that VM. Several: each VM lists the addresses it calls from; a
source no VM lists is an unknown caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from openimds.core.inventory import VmSnapshot


class Callers(Protocol):
    """Who is calling a listener: the VM a peer address speaks for, or None. The metadata
    listener asks the fleet; a token source's listener always speaks for one VM."""

    def for_peer(self, peer: str) -> VmSnapshot | None: ...


class CallerResolver:
    def __init__(self, vms: Iterable[VmSnapshot]) -> None:
        vm_list = list(vms)
        self._only = vm_list[0].id if len(vm_list) == 1 and not vm_list[0].addresses else None
        self._by_address = {addr: vm.id for vm in vm_list for addr in vm.addresses}

    def resolve(self, peer: str) -> str | None:
        """The VM id for a peer address, or None when no VM claims it."""
        if self._only is not None:
            return self._only
        return self._by_address.get(_strip_mapped(peer))


def _strip_mapped(address: str) -> str:
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    return address[7:] if address.startswith("::ffff:") else address
