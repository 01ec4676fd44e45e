"""The one configuration model: every section and setting, with its default and limits.

Validated before any socket opens (see `loading.py` for how file, environment and flags
are assembled into it).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from openimds.config.errors import FieldError
from openimds.config.faults_model import FaultsSettings
from openimds.config.hosts_model import HostsSettings
from openimds.config.identity_model import guid
from openimds.config.listen import Listen, ListenAddress
from openimds.config.proxy_model import ProxySettings
from openimds.config.vm_model import VmSpec


def default_state_path() -> str:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "openimds" / "state.db")


class _Section(BaseModel):
    # No inf/nan: an endless notice or delay would make times that cannot be rendered.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ServerSettings(_Section):
    listen: Listen = Field("127.0.0.1:8080", validate_default=True)
    rate_limit: float = Field(5.0, ge=0, description="requests/s per VM; 0 turns it off")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True
    idle_timeout: float = Field(
        60.0, gt=0, le=3600, description="seconds a connection may go without a request"
    )
    head_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds a request head may take to arrive whole"
    )
    max_connections: int = Field(
        16384, ge=1, le=1_000_000, description="open connections per listener; more are reset"
    )
    max_connections_per_source: int = Field(
        4096, ge=0, le=1_000_000, description="open connections per source address; 0: no cap"
    )
    # Azure answers with `Server: IMDS/<build>`.
    server_header: str = "IMDS/150.870.65.1854"

    @field_validator("listen")
    @classmethod
    def _tcp_only(cls, value: ListenAddress) -> ListenAddress:
        # Clients reach IMDS over TCP; the lean metadata server binds no Unix socket.
        if value.is_unix:
            raise ValueError(
                "the metadata listener needs HOST:PORT (e.g. 169.254.169.254:80); "
                "unix:PATH is for admin.listen only"
            )
        return value


_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")


class AdminTlsFiles(_Section):
    """The admin listener's certificate (PEM, the chain after it) and its unencrypted
    PEM key."""

    cert_file: str
    key_file: str


class AdminSettings(_Section):
    listen: Listen = Field("127.0.0.1:8081", validate_default=True)
    token: SecretStr | None = None
    tls: Literal["self-signed"] | AdminTlsFiles | None = Field(
        None,
        description="serve the admin API over TLS: `self-signed` (generated once, kept in "
        "the state store, SHA-256 fingerprint printed at start) or {cert_file, key_file}",
    )
    # How commands verify the admin listener's certificate (client side).
    tls_ca_file: str | None = Field(None, description="CA bundle commands trust (PEM)")
    tls_fingerprint: str | None = Field(
        None, description="SHA-256 of the admin certificate commands accept, hex (colons ok)"
    )
    login_failures: int = Field(
        10, ge=0, description="refused tokens per source address per minute, then 429; 0: off"
    )
    console: bool = Field(
        True, description="serve the operator console at /console/ (behind the admin token)"
    )

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        return value

    @field_validator("tls", mode="before")
    @classmethod
    def _tls_mode(cls, value: object) -> object:
        # One sentence instead of one error per member of the union.
        if isinstance(value, str) and value != "self-signed":
            raise ValueError(f"expected self-signed or {{cert_file, key_file}}, got {value!r}")
        return value

    @field_validator("tls_fingerprint")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(":", "").strip()
        if not _SHA256_HEX.fullmatch(digits):
            raise ValueError(
                "expected a SHA-256 fingerprint: 64 hex digits, colons allowed "
                "(as `openssl x509 -noout -fingerprint -sha256` prints it)"
            )
        return digits.upper()

    @model_validator(mode="after")
    def _tls_over_tcp(self) -> AdminSettings:
        if self.tls is not None and self.listen.is_unix:
            raise FieldError(
                ("tls",), "a Unix socket is private to this host: TLS needs listen HOST:PORT"
            )
        return self

    @property
    def uses_tls(self) -> bool:
        """Commands speak https to the admin listener."""
        return self.tls is not None or bool(self.tls_ca_file or self.tls_fingerprint)


class StateSettings(_Section):
    path: str = Field(default_factory=default_state_path)

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        # An empty path would make SQLite open the current directory.
        if not value.strip():
            raise ValueError("empty; give a file path, sqlite:///path or memory:")
        return value


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}")
_HTTP_URL = re.compile(r"https?://[!-~]+")  # printable ASCII, no spaces


class AttestedSettings(_Section):
    """Attested data (docs/attested.md): document validity, answer cache, certificates."""

    validity_seconds: int = Field(21600, gt=0, description="how long a signed document is valid")
    cache_ttl_seconds: float = Field(5.0, ge=0, description="reuse a signed answer; 0: off")
    cache_size: int = Field(1024, ge=1, description="signed answers kept at most")
    cached_nonce_quirk: bool = Field(
        False, description="Azure's quirk: within the cache TTL, return the cached nonce"
    )
    cloud: Literal["public", "usgov", "china", "germany"] | None = Field(
        None, description="sign as this cloud for every VM instead of following azEnvironment"
    )
    san_dns_names: list[str] = Field(
        default_factory=list, description="DNS names of the signing certificate (not the cloud's)"
    )
    issuer_base_url: str | None = Field(
        None, description="base URL of the admin listener as clients reach it (AIA CA Issuers)"
    )
    ca_cert_file: str | None = None
    ca_key_file: str | None = None
    signing_cert_file: str | None = None
    signing_key_file: str | None = None
    chain_file: str | None = None

    # Checked here: a name or URL the certificate cannot hold would fail every attested
    # request later, long after the start.
    @field_validator("san_dns_names")
    @classmethod
    def _dns_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if len(name) > 253 or not _DNS_NAME.fullmatch(name):
                raise ValueError(f"not an ASCII DNS name: {name!r} (e.g. metadata.example.com)")
        return names

    @field_validator("issuer_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.fullmatch(value):
            raise ValueError(
                f"expected an ASCII http(s) URL, e.g. http://10.0.0.1:8081, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _files_pair_up(self) -> AttestedSettings:
        if (self.ca_cert_file is None) != (self.ca_key_file is None):
            raise ValueError("give ca_cert_file and ca_key_file together")
        if (self.signing_cert_file is None) != (self.signing_key_file is None):
            raise ValueError("give signing_cert_file and signing_key_file together")
        if self.ca_cert_file is not None and self.signing_cert_file is not None:
            raise ValueError("give either a CA (ca_*_file) or a signing certificate, not both")
        if self.chain_file is not None and self.signing_cert_file is None:
            raise ValueError("chain_file goes with signing_cert_file")
        return self


class EventNotices(_Section):
    """Default NotBefore lead time per event type, in seconds (Azure's minimum notice, 8)."""

    freeze: float = Field(900, ge=0)
    reboot: float = Field(900, ge=0)
    redeploy: float = Field(600, ge=0)
    preempt: float = Field(30, ge=0)
    # A scale set's Terminate notice is its own setting, 5 to 15 minutes.
    terminate: float = Field(300, ge=300, le=900)


class EventsSettings(_Section):
    """Scheduled events (docs/scheduled-events.md)."""

    scenario: str | None = Field(None, description="timeline file loaded once at start")
    approval: Literal["any", "all"] = Field(
        "all",
        description="all: the event starts once every affected VM approved; "
        "any: one affected VM's approval starts it for all its Resources",
    )
    completion_delay: float = Field(
        60.0, ge=0, description="seconds a Started event stays listed after its duration"
    )
    notice: EventNotices = Field(default_factory=EventNotices)


class IdentitySettings(_Section):
    """Managed-identity tokens (docs/identity.md)."""

    token_lifetime: int = Field(86400, ge=900, le=7 * 86400, description="seconds")
    # `{tenant}` becomes the VM's tenant id; Entra's v1 form by default.
    issuer: str = "https://sts.windows.net/{tenant}/"
    rate_limit: float = Field(20.0, ge=0, description="token requests/s per VM; 0 = off")
    tenant_id: str | None = Field(None, description="for VMs that name none; else generated")

    # A GUID like a VM's identities.tenantId: it becomes a path of the discovery document.
    _tenant = field_validator("tenant_id")(guid)

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"the issuer must be an http(s) URL, got {value!r}")
        return value


class JournalSettings(_Section):
    """The request journal (docs/testing.md): the last requests of each VM, redacted."""

    size: int = Field(100, ge=0, le=100000, description="requests kept per VM; 0 turns it off")


class GuestListener(_Section):
    listen: Listen | None = Field(
        None,
        description="HOST:PORT to serve on (168.63.129.16:80 / :32526 in a farm); off when unset",
    )

    @field_validator("listen")
    @classmethod
    def _tcp_only(cls, value: ListenAddress | None) -> ListenAddress | None:
        if value is not None and value.is_unix:
            raise ValueError("guests reach it over TCP: give HOST:PORT, e.g. 168.63.129.16:80")
        return value


class GuestSettings(_Section):
    """The guest plane (docs/guests.md): the WireServer and the HostGAPlugin, what an
    Azure guest agent talks to besides IMDS."""

    wireserver: GuestListener = Field(default_factory=GuestListener)
    hostgaplugin: GuestListener = Field(default_factory=GuestListener)
    wireserver_url: str | None = Field(
        None,
        description="the WireServer's base URL in the goal state's links, as guests reach it; "
        "default: http:// and the listen address (168.63.129.16 for a wildcard host)",
    )
    rate_limit: float = Field(
        0.0, ge=0, description="guest-plane requests/s per VM and API; 0 turns it off"
    )

    @field_validator("wireserver_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.fullmatch(value):
            raise ValueError(
                f"expected an http(s) URL such as http://168.63.129.16:80, got {value!r}"
            )
        return None if value is None else value.rstrip("/")


class Config(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    attested: AttestedSettings = Field(default_factory=AttestedSettings)
    hosts: HostsSettings = Field(default_factory=HostsSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    faults: FaultsSettings = Field(default_factory=FaultsSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    guest: GuestSettings = Field(default_factory=GuestSettings)
    # Empty when every VM comes from the state store (added through the admin API).
    vms: list[VmSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _listeners_apart(self) -> Config:
        # Checked here, so it is a configuration error rather than "address in use".
        metadata, admin = self.server.listen, self.admin.listen
        if metadata.clashes_with(admin):
            raise FieldError(
                ("admin", "listen"),
                f"{admin} would share a port with server.listen ({metadata}): "
                "the metadata and admin listeners need different addresses",
            )
        return self

    @field_validator("vms")
    @classmethod
    def _unique_names(cls, vms: list[VmSpec]) -> list[VmSpec]:
        counts = Counter(vm.display_name for vm in vms)
        dupes = sorted(name for name, count in counts.items() if count > 1)
        if dupes:
            raise ValueError(f"VM names must be unique; repeated: {', '.join(dupes)}")
        return vms

    @model_validator(mode="after")
    def _callers_resolvable(self) -> Config:
        # A signed proxy that handles every caller names the VM: no addresses needed then.
        if self.proxy.proxy_only or len(self.vms) < 2:
            return self
        if any(not vm.addresses for vm in self.vms):
            raise FieldError(
                ("vms",), "with several VMs, every VM must list the `addresses` it calls from"
            )
        return self

    @model_validator(mode="after")
    def _hosts_fit(self) -> Config:
        """Each token source names a VM of the file, and no two listeners share a fixed
        address (port 0 takes a free one, so it never clashes)."""
        names = {vm.display_name for vm in self.vms}
        taken = {str(self.server.listen): "server.listen", str(self.admin.listen): "admin.listen"}
        for which in ("wireserver", "hostgaplugin"):
            guest_listen: ListenAddress | None = getattr(self.guest, which).listen
            if guest_listen is None or guest_listen.port == 0:
                continue
            if str(guest_listen) in taken:
                where = taken[str(guest_listen)]
                raise ValueError(f"guest.{which}.listen: {guest_listen} is {where} too")
            taken[str(guest_listen)] = f"guest.{which}.listen"
        for name, settings in self.hosts.enabled():
            if settings.vm is not None and settings.vm not in names:
                known = ", ".join(sorted(names))
                raise ValueError(f"hosts.{name}.vm: no VM is named {settings.vm!r} ({known})")
            listen = self.hosts.listen_of(name, settings)
            if listen.port == 0:
                continue
            if str(listen) in taken:
                raise ValueError(f"hosts.{name}.listen: {listen} is {taken[str(listen)]} too")
            taken[str(listen)] = f"hosts.{name}.listen"
        return self
