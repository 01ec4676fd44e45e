"""Callers behind a signed edge proxy: the `proxy` settings made into the contract the
metadata listener checks (core/signed_caller.py), and the VM it resolves to."""

from __future__ import annotations

from collections.abc import Sequence

from openimds.config import ConfigError
from openimds.config.proxy_model import ProxySettings, check_secret
from openimds.core.signed_caller import ProxyTrust
from openimds.core.vm import VmSnapshot
from openimds.inventory.live import LiveInventory

MAX_SECRET_FILE = 4096  # a secret is tens of bytes; anything larger is the wrong file


def load_trust(settings: ProxySettings) -> ProxyTrust | None:
    """The contract, or None when no secret is set. A secret file that cannot be read, or
    holds no usable secret, is a ConfigError naming it (never echoing its content)."""
    if settings.secret is not None:
        secret = settings.secret.get_secret_value()
    elif settings.secret_file is not None:
        secret = _read_secret(settings.secret_file)
    else:
        return None
    return ProxyTrust(
        secret=secret.encode("ascii"),
        max_age=settings.max_age,
        sources=tuple(settings.sources),
        vm_header=settings.vm_header.lower().encode("ascii"),
        timestamp_header=settings.timestamp_header.lower().encode("ascii"),
        signature_header=settings.signature_header.lower().encode("ascii"),
    )


def _read_secret(path: str) -> str:
    where = f"proxy.secret_file: {path}"
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise ConfigError(f"{where}: larger than {MAX_SECRET_FILE} bytes; not a secret")
    try:
        text = raw.decode("ascii").strip()
        check_secret(text)
    except (UnicodeDecodeError, ValueError):
        raise ConfigError(
            f"{where}: the proxy secret must be at least 16 printable ASCII characters"
        ) from None
    return text


class ProxyCallers:
    """Who is calling the metadata listener when a proxy secret is set: the VM a trusted
    proxy signs for, or (for other peers, without proxy headers) the VM by address."""

    def __init__(self, trust: ProxyTrust, inventory: LiveInventory) -> None:
        self.trust = trust
        self.inventory = inventory
        self.headers = trust.headers

    def trusts(self, peer: str) -> bool:
        return self.trust.trusts(peer)

    def resolve(
        self,
        peer: str,
        trusted: bool,
        headers: Sequence[tuple[bytes, bytes]] | None,
        now: float,
    ) -> VmSnapshot | None:
        """The caller's VM or None (unknown); raises ProxyRefused."""
        named = self.trust.vouched(trusted, headers, now)
        if named is None:
            return self.inventory.for_peer(peer)
        return self.inventory.for_name(named)
