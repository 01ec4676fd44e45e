"""The guest plane, plugged into a server: a WireServer listener and a HostGAPlugin
listener when their addresses are set (`guest.wireserver.listen`,
`guest.hostgaplugin.listen`), each VM's provisioning state kept in the store and followed
from other nodes, `GET /vms/{name}/guest`, and its metrics.

Both listeners resolve callers as the metadata listener does (the live inventory by
source address, the signed edge proxy when configured) and serve their cacheable answers
(versions, goal state, configuration documents) as cached bytes per VM revision.
"""

from __future__ import annotations

from openimds.config.listen import WILDCARDS, ListenAddress
from openimds.core.dispatch import Dispatcher
from openimds.core.guest.api import hostgaplugin_dispatcher, wireserver_dispatcher
from openimds.core.guest.reports import AgentStatus, HealthReport
from openimds.core.throttle import RateLimiter
from openimds.core.vm import VmSnapshot
from openimds.guest.admin import GuestAdmin
from openimds.guest.book import KIND, GuestBook
from openimds.guest.certificates import VmCertificates, ssh_keys
from openimds.guest.metrics import GuestCollector
from openimds.runtime import Listener, Plug, Runtime
from openimds.store.follower import each_key
from openimds.web.metadata.state import MetadataServer

WIRESERVER_HOST = "168.63.129.16"


class Plane:
    """What the WireServer's endpoints need from outside a request (core GuestPlane)."""

    def __init__(self, runtime: Runtime, book: GuestBook, certificates: VmCertificates) -> None:
        self.runtime = runtime
        self.book = book
        self.certificates = certificates
        self._url: str | None = runtime.config.guest.wireserver_url

    def incarnation(self, vm: VmSnapshot) -> int:
        return self.book.incarnation(vm)

    def wireserver_url(self) -> str:
        """The configured URL, else http:// and the bound address, with 168.63.129.16 for
        a wildcard host (guests never call a wildcard)."""
        if self._url is None:
            listen = self.runtime.config.guest.wireserver.listen
            bound = self.runtime.bound.get("wireserver")
            if listen is None or bound is None:
                return f"http://{WIRESERVER_HOST}"
            port = bound.rpartition(":")[2]
            host = WIRESERVER_HOST if listen.host in WILDCARDS else listen.host
            host = f"[{host}]" if ":" in host else host
            self._url = f"http://{host}:{port}"
        return self._url

    def has_certificates(self, vm: VmSnapshot) -> bool:
        return self.certificates.has_any(vm)

    def record_health(self, vm: VmSnapshot, report: HealthReport) -> None:
        self.book.record_health(vm, report)

    def record_status(self, vm: VmSnapshot, status: AgentStatus) -> None:
        self.book.record_status(vm, status)

    def sealed_certificates(self, vm: VmSnapshot, transport_cert: str, cipher: str) -> str:
        return self.certificates.sealed(vm, transport_cert, cipher)


def install(runtime: Runtime) -> Plug:
    settings = runtime.config.guest
    book = GuestBook(runtime.store, runtime.clock.now, ssh_keys)
    book.load()
    listeners: list[Listener] = []
    servers: list[MetadataServer] = []

    def drop_cached(name: str) -> None:
        vm = runtime.inventory.vms.get(name)
        if vm is not None:
            for server in servers:
                server.drop_cached(vm)

    book.stale.append(drop_cached)
    budget = RateLimiter(settings.rate_limit)
    budgets: dict[str, RateLimiter] = {}
    if settings.wireserver.listen is not None:
        plane = Plane(runtime, book, VmCertificates(runtime.store))
        dispatcher = wireserver_dispatcher(plane)
        listeners.append(
            _listener("wireserver", settings.wireserver.listen, dispatcher, runtime, book, servers)
        )
        budgets.update({endpoint.name: budget for endpoint in dispatcher.endpoints})
    if settings.hostgaplugin.listen is not None:
        hostga = hostgaplugin_dispatcher(book)
        listeners.append(
            _listener("hostgaplugin", settings.hostgaplugin.listen, hostga, runtime, book, servers)
        )
        budgets.update({endpoint.name: budget for endpoint in hostga.endpoints})
    return Plug(
        admin=[GuestAdmin(book, runtime.inventory)],
        budgets=budgets,
        jobs=[book.flush],
        closers=[book.close],
        collectors=[GuestCollector(book, runtime.inventory)],
        follows={KIND: each_key(book.follow)},
        listeners=listeners,
    )


def _listener(
    name: str,
    address: ListenAddress,
    dispatcher: Dispatcher,
    runtime: Runtime,
    book: GuestBook,
    servers: list[MetadataServer],
) -> Listener:
    return Listener(
        name,
        address,
        dispatcher,
        runtime.inventory,
        byte_cache=True,
        signed_proxy=True,
        journal=True,
        on_answer=book.answered,
        attach=servers.append,
        setting=f"guest.{name}.listen",
    )
