"""The one configuration model, and how it is assembled and checked before any socket opens.

Precedence: defaults < file < environment (OPENIMDS_*) < command-line flags. A bad value
anywhere becomes one ConfigError naming where it came from (file, variable or flag), the
field path and what is allowed; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from openimds.config_report import Sources, file_schema, format_errors
from openimds.identity_model import _guid
from openimds.vm_model import VmSpec

ENV_PREFIX = "OPENIMDS_"
# Environment variables and the settings they set.
ENV_VARS: dict[str, str] = {
    "OPENIMDS_LISTEN": "server.listen",
    "OPENIMDS_RATE_LIMIT": "server.rate_limit",
    "OPENIMDS_LOG_LEVEL": "server.log_level",
    "OPENIMDS_ACCESS_LOG": "server.access_log",
    "OPENIMDS_ADMIN_LISTEN": "admin.listen",
    "OPENIMDS_ADMIN_TOKEN": "admin.token",
    "OPENIMDS_STATE": "state.path",
    "OPENIMDS_IDENTITY_ISSUER": "identity.issuer",
    "OPENIMDS_IDENTITY_RATE_LIMIT": "identity.rate_limit",
    "OPENIMDS_IDENTITY_TOKEN_LIFETIME": "identity.token_lifetime",
}


# Keys of one VM, which a single-VM file may give at the top instead of a `vms` list.
VM_KEYS = frozenset(VmSpec.model_fields)


class ConfigError(Exception):
    """A configuration problem, already worded for the user."""


def default_state_path() -> str:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "openimds" / "state.db")


def _check_listen(value: str) -> str:
    if value.startswith("unix:"):
        if len(value) <= len("unix:"):
            raise ValueError("a Unix socket needs a path, e.g. unix:/run/openimds/admin.sock")
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    return value


class _Section(BaseModel):
    # No inf/nan: an endless notice or delay would make times that cannot be rendered.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ServerSettings(_Section):
    listen: str = "127.0.0.1:8080"
    rate_limit: float = Field(5.0, ge=0, description="requests/s per VM; 0 turns it off")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True
    idle_timeout: float = Field(
        60.0, gt=0, le=3600, description="seconds a connection may go without a request"
    )
    # 11: Azure answers with `Server: IMDS/<build>`.
    server_header: str = "IMDS/150.870.65.1854"

    _listen = field_validator("listen")(_check_listen)


class AdminSettings(_Section):
    listen: str = "127.0.0.1:8081"
    token: SecretStr | None = None

    _listen = field_validator("listen")(_check_listen)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        return value


class StateSettings(_Section):
    path: str = Field(default_factory=default_state_path)


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
    # 8: Terminate notice is the scale set's own setting, 5 to 15 minutes.
    terminate: float = Field(300, ge=300, le=900)


class EventsSettings(_Section):
    """Scheduled events (docs/scheduled-events.md)."""

    scenario: str | None = Field(None, description="timeline file loaded once at start")
    approval: Literal["any", "all"] = Field(
        "all",
        description="all: the event starts once every affected VM approved (8, lifecycle 2); "
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
    _tenant = field_validator("tenant_id")(_guid)

    @field_validator("issuer")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"the issuer must be an http(s) URL, got {value!r}")
        return value


class Config(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    attested: AttestedSettings = Field(default_factory=AttestedSettings)
    vms: list[VmSpec] = Field(min_length=1)

    @field_validator("vms")
    @classmethod
    def _unique_names(cls, vms: list[VmSpec]) -> list[VmSpec]:
        names = [vm.display_name for vm in vms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"VM names must be unique; repeated: {', '.join(dupes)}")
        if len(vms) > 1 and any(not vm.addresses for vm in vms):
            raise ValueError("with several VMs, every VM must list the `addresses` it calls from")
        return vms


def demo_vm() -> dict[str, Any]:
    text = resources.files("openimds").joinpath("data/demo-vm.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def read_file(path: str) -> dict[str, Any]:
    """A YAML or JSON file (JSON is YAML), as a mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML or JSON: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def normalise(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """A file with one VM may leave out the `vms` list: its VM keys sit at the top."""
    top_vm = {k: v for k, v in data.items() if k in VM_KEYS}
    rest = {k: v for k, v in data.items() if k not in VM_KEYS}
    if top_vm and "vms" in rest:
        keys = ", ".join(sorted(top_vm))
        raise ConfigError(f"{origin}: give either a `vms` list or one VM's keys ({keys}), not both")
    if top_vm:
        rest["vms"] = [top_vm]
    return rest


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def load_config(
    path: str | None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Assemble and validate the effective configuration."""
    env = os.environ if env is None else env
    raw = read_file(path) if path else {}
    sources = Sources(file=path, shorthand="vms" not in raw and bool(set(raw) & VM_KEYS))
    data = normalise(raw, path) if path else {}
    data.setdefault("vms", [demo_vm()])
    for var, dotted in ENV_VARS.items():
        if var in env:
            _set(data, dotted, env[var])
            sources.overrides[dotted] = f"environment variable {var}"
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set(data, dotted, value)
            sources.overrides[dotted] = f"flag --{dotted.split('.')[-1].replace('_', '-')}"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, sources, Config)) from None


def effective(config: Config) -> dict[str, Any]:
    """The configuration as `config show` prints it: plain data, secrets redacted."""
    dumped: dict[str, Any] = config.model_dump(mode="json", exclude_none=True)
    if config.admin.token is not None:
        dumped["admin"]["token"] = "***"
    return dumped


def json_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file (shipped as docs/config.schema.json)."""
    return file_schema(Config, VmSpec)
