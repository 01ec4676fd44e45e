"""A VM's certificates for the WireServer's Certificates document (docs/guests.md).

A VM's certificates are its SSH public keys given as certificates (`publicKeys` of its
instance document), as Azure hands SSH keys to the guest: each key in a certificate,
signed by one key kept in the state store, made deterministically (same key, same
certificate and thumbprint, on every node and after a restart). The PKCS#12 of a VM's
certificates is made once per VM revision; each answer then only seals it to the
transport certificate of the request.
"""

from __future__ import annotations

import base64
import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from openimds.core.guest.api import SealError
from openimds.core.vm import VmSnapshot
from openimds.crypto.cms_envelope import (
    CIPHERS,
    TransportCertError,
    key_certificate,
    pfx,
    seal,
    thumbprint,
    transport_key,
)
from openimds.store import Store

log = logging.getLogger("openimds")
KEY_SETTING = "guest_certificate_key"


def _issuer_key(store: Store) -> rsa.RSAPrivateKey:
    fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = fresh.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    kept = serialization.load_pem_private_key(
        store.put_setting_once(KEY_SETTING, pem).encode(), None
    )
    assert isinstance(kept, rsa.RSAPrivateKey)
    return kept


def ssh_keys(vm: VmSnapshot) -> list[str]:
    """The VM's SSH public keys (keyData), as its instance document lists them."""
    listed = vm.compute.get("publicKeys")
    if not isinstance(listed, list):
        return []
    return [str(k.get("keyData", "")).strip() for k in listed if isinstance(k, dict)]


def _public_key(data: str) -> CertificatePublicKeyTypes | None:
    try:
        key = serialization.load_ssh_public_key(data.encode())
    except (ValueError, TypeError):
        return None
    # DSA and SK keys cannot go in a certificate the agents read; they are left out.
    return key if isinstance(key, CertificatePublicKeyTypes.__args__) else None  # type: ignore[attr-defined]


class VmCertificates:
    def __init__(self, store: Store) -> None:
        self._issuer = _issuer_key(store)
        # VM name -> (revision, certificates, PKCS#12).
        self._made: dict[str, tuple[int, list[x509.Certificate], bytes]] = {}

    def of(self, vm: VmSnapshot) -> tuple[list[x509.Certificate], bytes]:
        made = self._made.get(vm.name)
        if made is None or made[0] != vm.revision:
            certs = [
                key_certificate(key, vm.name, self._issuer)
                for key in map(_public_key, ssh_keys(vm))
                if key is not None
            ]
            made = (vm.revision, certs, pfx(certs) if certs else b"")
            self._made[vm.name] = made
        return made[1], made[2]

    def thumbprints(self, vm: VmSnapshot) -> list[str]:
        return [thumbprint(cert) for cert in self.of(vm)[0]]

    def has_any(self, vm: VmSnapshot) -> bool:
        return bool(self.of(vm)[0])

    def sealed(self, vm: VmSnapshot, transport_cert: str, cipher: str) -> str:
        if cipher not in CIPHERS:
            raise SealError(f"x-ms-cipher-name must be one of {', '.join(CIPHERS)}")
        try:
            recipient = transport_key(transport_cert)
        except TransportCertError as exc:
            raise SealError(str(exc)) from None
        return base64.b64encode(seal(self.of(vm)[1], recipient, cipher)).decode()
