"""Signed edge-proxy identity: the VM a trusted proxy vouches for (docs/fleet.md).

A proxy that terminates a VM's connection (as OpenStack's per-network metadata proxy
does) hides the VM's source address; instead it names the VM in a header and signs the
name with a secret it shares with openimds:

    signature = hex(HMAC-SHA256(secret, "<vm>|<timestamp>"))   max_age > 0 (default)
    signature = hex(HMAC-SHA256(secret, "<vm>"))               max_age = 0

Rules, in the order they are checked:
- Only callers from the proxy's source addresses are asked for the headers (none
  listed: every caller is, so every request must be signed). Any other caller that
  sends one of them is refused (a forgery); without them it is resolved by address.
- From a proxy source the VM and signature headers, and the timestamp unless max_age
  is 0, are each given exactly once; the timestamp is decimal Unix seconds.
- The signature matches (constant-time compare) before the timestamp is looked at, so
  an unsigned request learns nothing about the clock.
- The timestamp lies within max_age seconds of now, either side (clock skew): a
  captured header set can be replayed only within that window.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from openimds.core.errors import ProxyRefused

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658: longer is not a timestamp
VERIFIED_ENTRIES = 4096  # signatures remembered as valid (a few per VM per second)


def signed_string(vm: bytes, timestamp: bytes | None) -> bytes:
    """What the proxy signs: the VM, then `|` and the timestamp when there is one."""
    return vm if timestamp is None else vm + b"|" + timestamp


def proxy_signature(secret: bytes, vm: str, timestamp: int | None) -> str:
    """The signature header's value a proxy sends (lower-case hex)."""
    stamp = None if timestamp is None else str(timestamp).encode()
    return hmac.digest(secret, signed_string(vm.encode(), stamp), "sha256").hex()


@dataclass(frozen=True, slots=True)
class ProxyTrust:
    """The contract with the proxy: the secret, the timestamp window, the addresses the
    proxy connects from (empty: any), and the header names (lower-case)."""

    secret: bytes
    max_age: int = 60
    sources: tuple[IPNetwork, ...] = ()
    vm_header: bytes = b"x-openimds-vm"
    timestamp_header: bytes = b"x-openimds-timestamp"
    signature_header: bytes = b"x-openimds-signature"
    _verified: dict[tuple[bytes, bytes | None, bytes], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def headers(self) -> frozenset[bytes]:
        return frozenset((self.vm_header, self.timestamp_header, self.signature_header))

    def trusts(self, peer: str) -> bool:
        """Whether a peer address is the proxy's (asked once per connection)."""
        if not self.sources:
            return True
        try:
            address = ipaddress.ip_address(peer.removeprefix("::ffff:"))
        except ValueError:
            return False
        return any(address in network for network in self.sources)

    def vouched(
        self, trusted: bool, headers: Sequence[tuple[bytes, bytes]] | None, now: float
    ) -> str | None:
        """The VM (name or vmId) the proxy vouches for; None: resolve by address.
        `headers` are the request's proxy headers as (lower-case name, value)."""
        if not trusted:
            if headers:
                raise ProxyRefused(
                    "forged", "Proxy identity headers are accepted only from the proxy"
                )
            return None
        given = _once(headers or ())
        vm = given.get(self.vm_header)
        signature = given.get(self.signature_header)
        stamp = given.get(self.timestamp_header) if self.max_age else None
        if vm is None or signature is None or (self.max_age and stamp is None):
            raise ProxyRefused("unsigned", "The request carries no signed proxy identity")
        name = self._verified.get((vm, stamp, signature))
        if name is None:
            name = self._verify(vm, stamp, signature)
        if stamp is not None and abs(now - int(stamp)) > self.max_age:
            raise ProxyRefused("expired", "The proxy identity timestamp is outside its window")
        return name

    def _verify(self, vm: bytes, stamp: bytes | None, signature: bytes) -> str:
        """The VM's name once the signature holds; remembered, so the requests a proxy
        sends for one VM within one second cost one HMAC."""
        if stamp is not None and not _is_timestamp(stamp):
            raise ProxyRefused("malformed", "The proxy identity timestamp is not Unix seconds")
        expected = hmac.digest(self.secret, signed_string(vm, stamp), "sha256")
        if not hmac.compare_digest(expected, _unhex(signature)):
            raise ProxyRefused("bad-signature", "The proxy identity signature does not match")
        try:
            name = vm.decode("utf-8")
        except UnicodeDecodeError:
            raise ProxyRefused("malformed", "The proxy identity names no VM") from None
        if len(self._verified) >= VERIFIED_ENTRIES:
            self._verified.clear()  # bounded: a stream of new timestamps cannot grow it
        self._verified[(vm, stamp, signature)] = name
        return name


def _once(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    given: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in given:
            # Two values: which one the proxy meant (or the VM slipped in) is unknowable.
            raise ProxyRefused("malformed", "A proxy identity header is given twice")
        given[name] = value.strip()
    return given


def _is_timestamp(stamp: bytes) -> bool:
    return 0 < len(stamp) <= MAX_TIMESTAMP_DIGITS and stamp.isdigit()


def _unhex(signature: bytes) -> bytes:
    """The signature's bytes (hex, either case); an empty result never matches."""
    try:
        return bytes.fromhex(signature.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return b""
