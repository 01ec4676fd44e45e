"""The admin listener's TLS, so fleet nodes can be managed across hosts without the
admin token crossing the network in clear text.

`admin.tls: self-signed` makes an EC P-256 certificate once and keeps it in the state
store (like Service Fabric's), so a fingerprint pinned by a client stays valid across
restarts; `admin.tls: {cert_file, key_file}` serves the operator's own. Either way the
certificate's SHA-256 fingerprint is printed at start, for `--admin-fingerprint`.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from cryptography import x509

from openimds.config import Config, ConfigError
from openimds.config.listen import WILDCARDS
from openimds.config.model import AdminSettings, AdminTlsFiles
from openimds.crypto.ca import CaError, KeyPair, load_pair
from openimds.crypto.tls_cert import kept_self_signed, server_context, sha256_fingerprint
from openimds.store import Store

SETTING = "admin_tls"
COMMON_NAME = "openimds admin API"


@dataclass(frozen=True)
class AdminTls:
    context: ssl.SSLContext
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return sha256_fingerprint(self.certificate)


def check_files(config: Config) -> None:
    """The configured certificate and key can be read and belong together (for
    `config check` and before `serve` opens a socket); ConfigError says which is wrong."""
    tls = config.admin.tls
    if isinstance(tls, AdminTlsFiles):
        _load(tls)


def admin_tls(config: Config, store: Store) -> AdminTls | None:
    """The admin listener's TLS context and certificate, or None when TLS is off."""
    tls = config.admin.tls
    if tls is None:
        return None
    if isinstance(tls, AdminTlsFiles):
        pair = _load(tls)
        context = _tls12_context()
        context.load_cert_chain(tls.cert_file, tls.key_file)  # the chain after the leaf too
        return AdminTls(context, pair.cert)
    pair, _ = kept_self_signed(store, SETTING, COMMON_NAME, _names(config.admin))
    return AdminTls(server_context(pair), pair.cert)


def stored_certificate(store: Store) -> x509.Certificate | None:
    """The self-signed certificate a server keeps (what a command on its host trusts)."""
    stored = store.get_setting(SETTING)
    return None if stored is None else KeyPair.from_json(stored, SETTING)[0].cert


def _load(tls: AdminTlsFiles) -> KeyPair:
    try:
        return load_pair(tls.cert_file, tls.key_file)
    except CaError as exc:
        raise ConfigError(f"admin.tls: {exc}") from None


def _tls12_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _names(admin: AdminSettings) -> list[str]:
    """Names beside localhost and loopback the certificate holds: the listen address when
    it is a specific one, and this host's name (what another host is likely to dial)."""
    names = [socket.gethostname()]
    if admin.listen.host not in WILDCARDS and admin.listen.host:
        names.insert(0, admin.listen.host)
    return names
