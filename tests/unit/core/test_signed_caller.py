"""The signed edge-proxy contract: what is signed, what is refused and why."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from openimds.core.errors import ProxyRefused
from openimds.core.signed_caller import VERIFIED_ENTRIES, ProxyTrust, proxy_signature

SECRET = b"a-proxy-secret-of-some-length"
NOW = 1_700_000_000
TRUST = ProxyTrust(secret=SECRET, max_age=60)
VM, TS, SIG = b"x-openimds-vm", b"x-openimds-timestamp", b"x-openimds-signature"


def signed(vm: str = "vm-a", ts: int = NOW, secret: bytes = SECRET) -> list[tuple[bytes, bytes]]:
    return [
        (VM, vm.encode()),
        (TS, str(ts).encode()),
        (SIG, proxy_signature(secret, vm, ts).encode()),
    ]


def refusal(headers: list[tuple[bytes, bytes]] | None, trusted: bool = True) -> str:
    with pytest.raises(ProxyRefused) as caught:
        TRUST.vouched(trusted, headers, NOW)
    assert caught.value.status == 403
    return caught.value.reason


def test_the_signature_is_hex_hmac_sha256_of_vm_bar_timestamp() -> None:
    # The contract a proxy implements (docs/fleet.md), computed independently.
    expected = hmac.new(SECRET, b"vm-a|1700000000", hashlib.sha256).hexdigest()
    assert proxy_signature(SECRET, "vm-a", NOW) == expected
    assert proxy_signature(SECRET, "vm-a", None) == hmac.new(SECRET, b"vm-a", "sha256").hexdigest()


def test_a_valid_signature_names_the_vm() -> None:
    assert TRUST.vouched(True, signed(), NOW) == "vm-a"
    # Upper-case hex (haproxy's `hex` converter) is the same signature.
    upper = [(n, v.upper() if n == SIG else v) for n, v in signed()]
    assert TRUST.vouched(True, upper, NOW + 5) == "vm-a"


@pytest.mark.parametrize("skew", [-60, 60])
def test_the_window_holds_either_side(skew: int) -> None:
    assert TRUST.vouched(True, signed(ts=NOW + skew), NOW) == "vm-a"
    assert refusal(signed(ts=NOW + skew + (1 if skew > 0 else -1))) == "expired"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (None, "unsigned"),
        (signed()[:2], "unsigned"),  # no signature
        ([signed()[0], signed()[2]], "unsigned"),  # no timestamp
        (signed(secret=b"another-secret-entirely"), "bad-signature"),
        ([(VM, b"vm-b"), *signed()[1:]], "bad-signature"),  # the name swapped
        ([*signed()[:2], (SIG, b"not hex at all")], "bad-signature"),
        ([*signed()[:2], (SIG, b"")], "bad-signature"),
        ([signed()[0], (TS, b"17e8"), signed()[2]], "malformed"),
        ([signed()[0], (TS, b"-1700000000"), signed()[2]], "malformed"),
        ([*signed(), (VM, b"vm-b")], "malformed"),  # a header twice
        ([(VM, b"\xff"), (TS, str(NOW).encode()), (SIG, b"")], "bad-signature"),
    ],
)
def test_refused(headers: list[tuple[bytes, bytes]] | None, reason: str) -> None:
    assert refusal(headers) == reason


def test_the_signature_is_checked_before_the_clock() -> None:
    # An unsigned request learns nothing about the window.
    assert refusal(signed(ts=NOW - 3600, secret=b"wrong-secret-wrong-secret")) == "bad-signature"


def test_a_caller_that_is_not_the_proxy_may_not_send_the_headers() -> None:
    assert refusal(signed(), trusted=False) == "forged"
    assert refusal([(SIG, b"00")], trusted=False) == "forged"
    assert TRUST.vouched(False, None, NOW) is None  # resolved by address


def test_without_a_window_the_vm_alone_is_signed() -> None:
    trust = ProxyTrust(secret=SECRET, max_age=0)
    sig = proxy_signature(SECRET, "vm-a", None).encode()
    assert trust.vouched(True, [(VM, b"vm-a"), (SIG, sig)], NOW) == "vm-a"
    # A timestamp header is then no part of the contract and is ignored.
    assert trust.vouched(True, [(VM, b"vm-a"), (SIG, sig), (TS, b"1")], NOW) == "vm-a"


def test_names_vouched_for_may_be_any_utf8() -> None:
    assert TRUST.vouched(True, signed(vm="vm-ä"), NOW) == "vm-ä"


def test_sources() -> None:
    trust = ProxyTrust(
        secret=SECRET,
        sources=(ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00::5/128")),
    )
    assert trust.trusts("10.0.0.7")
    assert trust.trusts("::ffff:10.0.0.7")  # a dual-stack socket's IPv4 peer
    assert trust.trusts("fd00::5")
    assert not trust.trusts("10.0.1.7")
    assert not trust.trusts("local")
    assert TRUST.trusts("192.0.2.1")  # no sources: every caller must be signed


def test_a_remembered_signature_still_expires_and_the_memory_is_bounded() -> None:
    trust = ProxyTrust(secret=SECRET, max_age=60)
    assert trust.vouched(True, signed(), NOW) == "vm-a"
    assert trust.vouched(True, signed(), NOW + 60) == "vm-a"  # remembered
    with pytest.raises(ProxyRefused) as caught:
        trust.vouched(True, signed(), NOW + 61)
    assert caught.value.reason == "expired"
    for i in range(VERIFIED_ENTRIES + 10):
        trust.vouched(True, signed(ts=NOW + i % 50, vm=f"vm-{i}"), NOW)
    assert len(trust._verified) <= VERIFIED_ENTRIES
