"""Callers behind a signed edge proxy: the settings made into a contract, and the
metadata listener resolving, caching and refusing with it (no sockets)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from openimds.config import ConfigError
from openimds.config.proxy_model import ProxySettings
from openimds.core.errors import ProxyRefused
from openimds.core.identity.identity_api import identity_error
from openimds.core.signed_caller import proxy_signature
from openimds.inventory.live import LiveInventory
from openimds.inventory.proxy import ProxyCallers, load_trust
from openimds.web.metadata.state import MetadataServer
from tests.support.imds import vm_spec
from tests.support.listener import connect, metadata_server

SECRET = "proxy-secret-0123456789"
DOC = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
GUID_B = "0b6f5c36-5d1b-4d34-8e8c-2b1f5e0c9a11"


def inventory() -> LiveInventory:
    return LiveInventory(
        [
            vm_spec("vm-a", addresses=["10.0.0.11"]),
            vm_spec("vm-b", addresses=["10.0.0.12"], vmId=GUID_B),
        ]
    )


def server(
    sources: list[str] | None = None, the_inventory: LiveInventory | None = None
) -> MetadataServer:
    the_inventory = the_inventory or inventory()
    settings = ProxySettings.model_validate(
        {"secret": SECRET, "sources": sources if sources is not None else ["10.0.0.5"]}
    )
    trust = load_trust(settings)
    assert trust is not None
    return metadata_server(the_inventory, proxy=ProxyCallers(trust, the_inventory))


def headers(vm: str, ts: int | None = None, secret: str = SECRET) -> str:
    ts = int(time.time()) if ts is None else ts
    sig = proxy_signature(secret.encode(), vm, ts)
    return f"X-OpenIMDS-VM: {vm}\r\nX-OpenIMDS-Timestamp: {ts}\r\nX-OpenIMDS-Signature: {sig}\r\n"


def ask(srv: MetadataServer, peer: str, extra: str = "", path: str = DOC) -> tuple[int, bytes]:
    proto, transport = connect(srv, peer)
    proto.data_received(f"GET {path} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n{extra}\r\n".encode())
    head, _, body = transport.written.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_no_secret_no_contract(tmp_path: Path) -> None:
    assert load_trust(ProxySettings()) is None
    # ... and the listener never looks at the headers: a forged set changes nothing.
    srv = metadata_server(inventory())
    assert srv.proxy is None
    assert ask(srv, "10.0.0.11", headers("vm-b", secret="x" * 20)) == (200, b"vm-a")


def test_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(f"  {SECRET}\n")
    trust = load_trust(ProxySettings(secret_file=str(path)))
    assert trust is not None and trust.secret == SECRET.encode()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read"), ("short\n", "at least 16"), ("x" * 5000, "not a secret")],
)
def test_a_bad_secret_file_is_a_config_error(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_trust(ProxySettings(secret_file=str(path)))
    assert f"proxy.secret_file: {path}" in str(caught.value)
    assert problem in str(caught.value)
    assert "short" not in str(caught.value).replace("short\n", "")  # never echoed


def test_the_proxy_speaks_for_the_vm_it_signs_for() -> None:
    srv = server()
    assert ask(srv, "10.0.0.5", headers("vm-a")) == (200, b"vm-a")
    assert ask(srv, "10.0.0.5", headers("vm-b")) == (200, b"vm-b")
    assert ask(srv, "10.0.0.5", headers(GUID_B)) == (200, b"vm-b")  # by vmId
    status, body = ask(srv, "10.0.0.5", headers("vm-z"))  # signed, but no such VM
    assert status == 404 and b"No virtual machine" in body
    assert srv.metrics.unknown_callers == 1


def test_one_connection_many_vms_never_share_a_cached_answer() -> None:
    srv = server()
    proto, transport = connect(srv, "10.0.0.5")
    for vm in ("vm-a", "vm-b", "vm-a", "vm-b"):
        before = len(transport.written)
        request = f"GET {DOC} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n{headers(vm)}\r\n"
        proto.data_received(request.encode())
        assert transport.written[before:].endswith(vm.encode())
    the_inventory = srv.inventory
    assert isinstance(the_inventory, LiveInventory)
    for name in ("vm-a", "vm-b"):  # both answers came from each VM's own cache
        assert srv.cache_for(the_inventory.vms[name]).entries


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("", "unsigned"),
        ("X-OpenIMDS-VM: vm-a\r\n", "unsigned"),
        (headers("vm-a", secret="another-secret-0123"), "bad-signature"),
        (headers("vm-a", ts=int(time.time()) - 600), "expired"),
    ],
)
def test_the_proxy_must_sign(extra: str, reason: str) -> None:
    srv = server()
    status, body = ask(srv, "10.0.0.5", extra)
    assert status == 403
    assert json.loads(body)["error"].startswith("Forbidden.")
    assert srv.metrics.proxy_refused == {reason: 1}
    assert srv.metrics.requests == {("refused", 403, "-"): 1}


def test_direct_callers_resolve_by_address_and_may_not_send_the_headers() -> None:
    srv = server()
    assert ask(srv, "10.0.0.11") == (200, b"vm-a")
    assert ask(srv, "10.0.0.12") == (200, b"vm-b")
    # vm-a claims to be vm-b with a signature it cannot make, or with one it saw.
    for forged in (headers("vm-b", secret="guessed-secret-0123"), headers("vm-b")):
        status, _ = ask(srv, "10.0.0.11", forged)
        assert status == 403
    assert srv.metrics.proxy_refused == {"forged": 2}


def test_without_sources_every_caller_must_be_signed() -> None:
    the_inventory = LiveInventory([vm_spec("vm-a"), vm_spec("vm-b")], addresses_required=False)
    srv = server(sources=[], the_inventory=the_inventory)
    assert ask(srv, "10.0.0.11")[0] == 403  # even from a VM's own address
    assert ask(srv, "192.0.2.7", headers("vm-b")) == (200, b"vm-b")


def test_the_identity_endpoints_refuse_in_their_own_shape() -> None:
    error = identity_error(ProxyRefused("forged", "No."))
    assert error.status == 403  # not a status the SDKs retry
    assert error.payload() == {"error": "invalid_request", "error_description": "Forbidden. No."}
