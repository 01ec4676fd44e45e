"""A self-signed TLS certificate for a loopback listener (Service Fabric's token service,
whose clients pin the certificate by its SHA-1 thumbprint instead of trusting a CA), and
the server-side SSL context that serves it."""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openimds.crypto.ca import KeyPair

LIFETIME: Final = timedelta(days=825)
RENEW_BEFORE: Final = timedelta(days=30)
BACKDATE: Final = timedelta(hours=1)


def issue_self_signed(common_name: str, now: datetime) -> KeyPair:
    """An EC P-256 certificate for localhost, 127.0.0.1 and ::1, signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openimds"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
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
