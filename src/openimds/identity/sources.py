"""The token sources beside the VM endpoint (`hosts:` in the config), as listeners.

Each enabled source becomes a `runtime.Listener`: its address, a dispatcher whose endpoints
speak that source's protocol (core/identity/arc_api.py, appservice_api.py, cloudshell_api.py,
servicefabric_api.py), the one VM it speaks for, and TLS for Service Fabric. Secrets a
config leaves out (IDENTITY_HEADER / MSI_SECRET) are generated once and kept in the state
store, as is Service Fabric's self-signed certificate, so clients configured once keep
working across restarts. Every source issues through the VM endpoint's `Issuer`.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from openimds.config.hosts_model import (
    ArcSettings,
    HostsSettings,
    SecretSourceSettings,
    SourceName,
    SourceSettings,
)
from openimds.core.dispatch import Dispatcher
from openimds.core.endpoint import Endpoint
from openimds.core.identity.appservice_api import AppServiceTokenEndpoint, AzureMlTokenEndpoint
from openimds.core.identity.arc_api import ArcTokenEndpoint
from openimds.core.identity.cloudshell_api import CloudShellTokenEndpoint
from openimds.core.identity.identity_api import IdentityDirectory
from openimds.core.identity.servicefabric_api import ServiceFabricTokenEndpoint
from openimds.core.identity.tokens import Issuer
from openimds.core.instance_api import InstanceEndpoint
from openimds.core.versions_api import VersionsEndpoint
from openimds.core.vm import VmSnapshot
from openimds.crypto.ca import KeyPair
from openimds.crypto.tls_cert import kept_self_signed, server_context, sha1_thumbprint
from openimds.identity.arc_keys import KeyFileChallenges, prepare_folder
from openimds.inventory.live import LiveInventory
from openimds.runtime import Job, Listener, Runtime
from openimds.store import Store

log = logging.getLogger("openimds")

# Where each source's clients send token requests (the path of IDENTITY_ENDPOINT or
# MSI_ENDPOINT): Arc and Service Fabric use IMDS's path, App Service /msi/token
# (Linux plans' form), Cloud Shell /oauth2/token.
TOKEN_PATHS: dict[SourceName, str] = {
    "arc": "/metadata/identity/oauth2/token",
    "appservice": "/msi/token",
    "azureml": "/msi/token",
    "cloudshell": "/oauth2/token",
    "servicefabric": "/metadata/identity/oauth2/token",
}
SECRET_SETTING = "source_secret/{name}"
TLS_SETTING = "servicefabric_tls"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a client needs to reach one source (the admin route `openimds env` reads)."""

    name: SourceName
    vm: str
    token_path: str
    secret: str | None = None
    thumbprint: str | None = None
    key_folder: str | None = None


class FixedVm:
    """A source's listener speaks for one VM, whoever calls (core.caller.Callers). The VM
    is looked up on each request, so a fleet change is followed."""

    def __init__(self, inventory: LiveInventory, name: str) -> None:
        self.inventory = inventory
        self.name = name

    def for_peer(self, peer: str) -> VmSnapshot | None:
        return self.inventory.vms.get(self.name)


@dataclass
class Sources:
    listeners: list[Listener] = field(default_factory=list)
    infos: list[SourceInfo] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    closers: list[Job] = field(default_factory=list)


@dataclass(frozen=True)
class _Built:
    dispatcher: Dispatcher
    info: SourceInfo
    tls: ssl.SSLContext | None = None


_Builder = Callable[
    [Runtime, SourceSettings, SourceInfo, IdentityDirectory, Issuer, Sources], _Built
]


def build_sources(runtime: Runtime, directory: IdentityDirectory, issuer: Issuer) -> Sources:
    """A listener per enabled source, with the jobs and closers their state needs."""
    sources = Sources()
    first_vm = next(iter(runtime.inventory.vms))
    for name, settings in runtime.config.hosts.enabled():
        vm = settings.vm or first_vm
        info = SourceInfo(name, vm, TOKEN_PATHS[name])
        built = _BUILDERS[name](runtime, settings, info, directory, issuer, sources)
        address = HostsSettings.listen_of(name, settings)
        callers = FixedVm(runtime.inventory, vm)
        sources.listeners.append(Listener(name, address, built.dispatcher, callers, built.tls))
        sources.infos.append(built.info)
    return sources


def _token_service(
    info: SourceInfo, endpoint: Endpoint, metadata_header: bool = False
) -> Dispatcher:
    return Dispatcher([(info.token_path, endpoint)], metadata_header=metadata_header)


def _arc(
    runtime: Runtime,
    settings: SourceSettings,
    info: SourceInfo,
    directory: IdentityDirectory,
    issuer: Issuer,
    sources: Sources,
) -> _Built:
    assert isinstance(settings, ArcSettings)
    prepare_folder(settings.key_folder)
    book = KeyFileChallenges(settings.key_folder)
    sources.jobs.append(book.prune)
    sources.closers.append(book.close)
    routes: list[tuple[str, Endpoint]] = [
        (info.token_path, ArcTokenEndpoint(directory, issuer, book)),
        # HIMDS answers instance metadata to any local caller, as IMDS does on a VM.
        ("/metadata/instance", InstanceEndpoint()),
        ("/metadata/versions", VersionsEndpoint()),
    ]
    info = SourceInfo(info.name, info.vm, info.token_path, key_folder=settings.key_folder)
    return _Built(Dispatcher(routes), info)


def _by_secret_header(
    endpoint: Callable[[IdentityDirectory, Issuer, str], Endpoint],
) -> _Builder:
    """App Service and Azure ML: one secret, kept in the store, checked in a header."""

    def build(
        runtime: Runtime,
        settings: SourceSettings,
        info: SourceInfo,
        directory: IdentityDirectory,
        issuer: Issuer,
        sources: Sources,
    ) -> _Built:
        secret = _secret(runtime.store, info.name, settings)
        dispatcher = _token_service(info, endpoint(directory, issuer, secret))
        return _Built(dispatcher, _with_secret(info, secret))

    return build


def _cloudshell(
    runtime: Runtime,
    settings: SourceSettings,
    info: SourceInfo,
    directory: IdentityDirectory,
    issuer: Issuer,
    sources: Sources,
) -> _Built:
    # Cloud Shell's clients send Metadata: true; its shell is the only local caller.
    endpoint = CloudShellTokenEndpoint(directory, issuer)
    return _Built(_token_service(info, endpoint, metadata_header=True), info)


def _servicefabric(
    runtime: Runtime,
    settings: SourceSettings,
    info: SourceInfo,
    directory: IdentityDirectory,
    issuer: Issuer,
    sources: Sources,
) -> _Built:
    secret = _secret(runtime.store, info.name, settings)
    pair = _tls_pair(runtime.store)
    endpoint = ServiceFabricTokenEndpoint(directory, issuer, secret)
    info = SourceInfo(
        info.name, info.vm, info.token_path, secret, thumbprint=sha1_thumbprint(pair.cert)
    )
    return _Built(_token_service(info, endpoint), info, server_context(pair))


_BUILDERS: dict[SourceName, _Builder] = {
    "arc": _arc,
    "appservice": _by_secret_header(AppServiceTokenEndpoint),
    "azureml": _by_secret_header(AzureMlTokenEndpoint),
    "cloudshell": _cloudshell,
    "servicefabric": _servicefabric,
}


def _secret(store: Store, name: str, settings: SourceSettings) -> str:
    """The configured secret, else one generated once per state store."""
    if isinstance(settings, SecretSourceSettings) and settings.secret is not None:
        return settings.secret.get_secret_value()
    return store.put_setting_once(SECRET_SETTING.format(name=name), secrets.token_hex(16))


def _with_secret(info: SourceInfo, secret: str) -> SourceInfo:
    return SourceInfo(info.name, info.vm, info.token_path, secret)


def _tls_pair(store: Store) -> KeyPair:
    """Service Fabric's certificate: kept in the store, so IDENTITY_SERVER_THUMBPRINT stays
    valid across restarts; replaced 30 days before it expires."""
    pair, new = kept_self_signed(store, TLS_SETTING, "openimds Service Fabric token service")
    if new:
        log.info("Service Fabric certificate made (thumbprint %s)", sha1_thumbprint(pair.cert))
    return pair
