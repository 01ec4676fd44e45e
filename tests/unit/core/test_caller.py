"""Which VM is asking (docs/architecture.md, caller identification)."""

from __future__ import annotations

from openimds.core.caller import CallerResolver
from openimds.core.vm import VmSnapshot
from tests.support.imds import bare_vm as vm


def test_one_vm_without_addresses_answers_everyone() -> None:
    resolver = CallerResolver([vm("only")])
    for peer in ("127.0.0.1", "::1", "10.9.8.7", "local", ""):
        assert resolver.resolve(peer) == "only"


def test_one_vm_with_addresses_answers_only_those() -> None:
    resolver = CallerResolver([vm("a", "10.0.0.4")])
    assert resolver.resolve("10.0.0.4") == "a"
    assert resolver.resolve("10.0.0.5") is None


def test_fleet_by_source_address() -> None:
    resolver = CallerResolver([vm("a", "10.0.0.4", "fd00::4"), vm("b", "10.0.0.5")])
    assert resolver.resolve("10.0.0.4") == "a"
    assert resolver.resolve("fd00::4") == "a"
    assert resolver.resolve("10.0.0.5") == "b"
    assert resolver.resolve("10.0.0.6") is None


def test_ipv4_mapped_peers_from_dual_stack_sockets() -> None:
    resolver = CallerResolver([vm("a", "10.0.0.4"), vm("b", "10.0.0.5")])
    assert resolver.resolve("::ffff:10.0.0.5") == "b"


def test_no_vms_answers_nobody() -> None:
    assert CallerResolver([]).resolve("127.0.0.1") is None


def test_a_signed_proxy_names_a_vm_by_name_or_vm_id() -> None:
    guid = "3f2d8c4e-6b1a-4e7f-9c3d-2a5b8e1f0c47"
    a = VmSnapshot(id="a", name="a", revision=1, instance={"compute": {"vmId": guid}})
    resolver = CallerResolver([a, vm("b")])
    assert resolver.named("a") == "a"
    assert resolver.named(guid) == "a"
    assert resolver.named(guid.upper()) == "a"  # a GUID in any case
    assert resolver.named("b") == "b"
    assert resolver.named("A") is None  # names are exact
    assert resolver.named("c") is None
