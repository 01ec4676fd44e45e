"""How a command trusts the admin listener's certificate when it speaks https.

In this order: a pinned SHA-256 fingerprint (`--admin-fingerprint`), a CA bundle
(`--admin-ca`), the certificate file of the shared configuration (`admin.tls.cert_file`),
the self-signed certificate the server keeps in the state store (read-only). A pinned
certificate is checked before the token is sent, and trusted alone, by its bytes rather
than its names, so a name the certificate lacks (another host's address) does not matter.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openimds.config import Config
from openimds.config.model import AdminTlsFiles
from openimds.store import StoreError, read_from
from openimds.web.admin_tls import stored_certificate


class UntrustedAdmin(Exception):
    """The admin listener's certificate cannot be verified; the message says why."""


def client_context(config: Config, host: str, port: int) -> ssl.SSLContext:
    admin = config.admin
    if admin.tls_fingerprint is not None:
        return _pinned(_fetch_and_match(host, port, admin.tls_fingerprint))
    if admin.tls_ca_file is not None:
        try:
            return ssl.create_default_context(cafile=admin.tls_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UntrustedAdmin(f"cannot use the admin CA {admin.tls_ca_file}: {exc}") from None
    if isinstance(admin.tls, AdminTlsFiles):
        try:
            return _pinned(_first_pem(Path(admin.tls.cert_file).read_bytes()))
        except (OSError, ValueError) as exc:
            raise UntrustedAdmin(
                f"cannot read admin.tls.cert_file {admin.tls.cert_file} to trust it ({exc}); "
                "pass --admin-ca or --admin-fingerprint"
            ) from None
    return _pinned(_stored_pem(config))


def _fetch_and_match(host: str, port: int, expected: str) -> str:
    """The server's certificate, fetched without trusting it, if its SHA-256 is the pin."""
    try:
        pem = ssl.get_server_certificate((host, port), timeout=10)
    except OSError as exc:
        raise UntrustedAdmin(
            f"cannot fetch the admin certificate from {host}:{port}: {exc}"
        ) from None
    got = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    if got != expected:
        raise UntrustedAdmin(
            f"the admin listener's certificate has SHA-256 {_colons(got)}, not the pinned "
            f"{_colons(expected)}: refusing to send the token"
        )
    return pem


def _stored_pem(config: Config) -> str:
    hint = (
        "pass --admin-fingerprint (the server prints it at start) or --admin-ca, or "
        "--state to the server's state store"
    )
    try:
        cert = read_from(config.state.path, stored_certificate)
    except StoreError as exc:
        raise UntrustedAdmin(f"cannot verify the admin certificate: {exc} ({hint})") from None
    if cert is None:
        raise UntrustedAdmin(f"no admin certificate in {config.state.path} ({hint})")
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _first_pem(data: bytes) -> str:
    cert = x509.load_pem_x509_certificates(data)[0]
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pinned(pem: str) -> ssl.SSLContext:
    """Trust this one certificate and nothing else, whatever names it holds."""
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = False
    # The pinned certificate is a trust anchor even though it is no CA.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _colons(digits: str) -> str:
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
