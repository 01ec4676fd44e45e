"""A self-signed TLS certificate for a loopback listener (Service Fabric's token service,
whose clients pin the certificate by its SHA-1 thumbprint instead of trusting a CA), and
the server-side SSL context that serves it."""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openimds.crypto.ca import KeyPair

LIFETIME: Final = timedelta(days=825)
RENEW_BEFORE: Final = timedelta(days=30)
BACKDATE: Final = timedelta(hours=1)


def issue_self_signed(common_name: str, now: datetime, hosts: Sequence[str] = ()) -> KeyPair:
    """An EC P-256 certificate for localhost, 127.0.0.1, ::1 and `hosts` (addresses or
    DNS names), signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openimds"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    names = [_san(host) for host in dict.fromkeys(("localhost", "127.0.0.1", "::1", *hosts))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class SettingStore(Protocol):
    def get_setting(self, key: str) -> str | None: ...

    def put_setting(self, key: str, value: str) -> None: ...


def kept_self_signed(
    store: SettingStore, setting: str, common_name: str, hosts: Sequence[str] = ()
) -> tuple[KeyPair, bool]:
    """The self-signed pair kept in the store under `setting`, made on first use and
    replaced 30 days before it expires, so a pinned certificate stays valid across
    restarts; True when it is new."""
    now = datetime.now(UTC)
    stored = store.get_setting(setting)
    if stored is not None:
        pair, _ = KeyPair.from_json(stored, setting)
        if not needs_renewal(pair, now):
            return pair, False
    pair = issue_self_signed(common_name, now, hosts)
    store.put_setting(setting, pair.to_json())
    return pair, True


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """As `openssl x509 -noout -fingerprint -sha256` prints it: upper-case hex pairs
    joined by colons."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def needs_renewal(pair: KeyPair, now: datetime) -> bool:
    return pair.cert.not_valid_after_utc - now < RENEW_BEFORE


def sha1_thumbprint(cert: x509.Certificate) -> str:
    """What IDENTITY_SERVER_THUMBPRINT holds: the SHA-1 of the DER certificate, in upper
    case hex as Windows shows it (msal compares it without regard to case)."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # a pin, not a signature


def server_context(pair: KeyPair) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the pair. The ssl module loads keys only from files:
    they are written to a private temporary directory and removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    key_pem = pair.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.TemporaryDirectory(prefix="openimds-tls-") as folder:  # mode 0700
        cert_path, key_path = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_path.write_bytes(pair.cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context
