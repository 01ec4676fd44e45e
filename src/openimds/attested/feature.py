"""Attested data, plugged into a server: the endpoint, its CA, and the issuer routes."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

from openimds.attested.admin import DOCUMENT_PATH, INTERMEDIATE_PATH, AttestedAdmin
from openimds.config import Config, ConfigError
from openimds.core.attested_api import AttestedEndpoint, SignedDocumentCache
from openimds.crypto.ca import KIND, CaError, CertificateAuthority, Cloud, cloud_of
from openimds.crypto.pkcs7 import Pkcs7Signer
from openimds.fleet.preview import MetadataPreview
from openimds.runtime import Plug, Runtime
from openimds.store import Store, StoreError
from openimds.store.follower import each_key
from openimds.store.memory import MemoryStore

log = logging.getLogger("openimds.attested")


def issuer_url(config: Config) -> str | None:
    """Where clients fetch the intermediate: the configured public base URL, else the
    admin listener's address. None (no AIA extension) when it cannot be known: a Unix
    socket, or port 0 before the listener has bound."""
    base = config.attested.issuer_base_url
    if base:
        return base.rstrip("/") + INTERMEDIATE_PATH
    listen = config.admin.listen
    # A wildcard bind is reachable on loopback from this host; set issuer_base_url for others.
    local = listen.local_url("https" if config.admin.tls is not None else "http")
    if local is None or listen.port == 0:
        return None
    return local + INTERMEDIATE_PATH


def build_ca(runtime: Runtime) -> tuple[CertificateAuthority, threading.Thread]:
    """Read the configured files now (a bad one stops the start) and create or load the
    keys on a worker thread, so the listeners open without waiting for key generation
    and the first request finds a signing certificate for every configured VM's cloud."""
    settings = runtime.config.attested
    ca = _open_ca(runtime.store, runtime.config)
    ca.check_stored()
    vms = runtime.inventory.vms.values()
    clouds = sorted(
        {settings.cloud}
        if settings.cloud
        else {cloud_of(str(vm.compute.get("azEnvironment", ""))) for vm in vms}
    )
    worker = threading.Thread(target=_prepare, args=(ca, clouds), name="attested-ca", daemon=True)
    worker.start()
    return ca, worker


def _prepare(ca: CertificateAuthority, clouds: list[Cloud]) -> None:
    _lowest_priority()
    try:
        ca.prepare(clouds)
    except StoreError as exc:  # worded already (a full disk): no traceback
        log.error("cannot prepare the attested-data certificates: state store: %s", exc)
    except Exception:  # the first request retries, and answers 500 if it fails again
        log.exception("cannot prepare the attested-data certificates")


def _lowest_priority() -> None:
    """Key generation releases the GIL but not the CPU: where the server has one core
    (pinned, or a small VM) this thread took its share of it while the start ran and
    delayed a large fleet's first answer (docs/performance.md). At the lowest priority
    (Linux: per thread) it uses what the start and the listener leave idle."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def check(config: Config) -> None:
    """The configured CA or signing files, read as `install` reads them."""
    _open_ca(MemoryStore(), config)


def _open_ca(store: Store, config: Config) -> CertificateAuthority:
    """The CA over `store`; it reads the configured files now (nothing is generated)."""
    try:
        return CertificateAuthority(store, config.attested, issuer_url(config))
    except CaError as exc:
        raise ConfigError(f"attested data: {exc}") from None


def install(runtime: Runtime) -> Plug:
    settings = runtime.config.attested
    ca, worker = build_ca(runtime)
    cache = SignedDocumentCache(
        settings.cache_ttl_seconds, settings.cache_size, reuse_nonce=settings.cached_nonce_quirk
    )
    endpoint = AttestedEndpoint(
        Pkcs7Signer(ca, settings.cloud), validity=settings.validity_seconds, cache=cache
    )
    return Plug(
        endpoints=[(DOCUMENT_PATH, endpoint)],
        admin=[AttestedAdmin(ca, MetadataPreview.of(runtime))],
        closers=[lambda: worker.join(timeout=30)],
        # Certificates another node (re)issued into a shared store: use them, don't re-issue.
        follows={KIND: each_key(ca.forget)},
    )
