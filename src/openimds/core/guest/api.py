"""The WireServer and HostGAPlugin endpoints (docs/guests.md): request + VM + now ->
response, as every core endpoint. What outlives a request comes from a `GuestPlane`
(the incarnation, the base URL, the sealed certificates), and a report is kept through
the port's named writes (`GuestReports`: record_health, record_status), durable before
the answer (docs/architecture.md, "Ports").

One path of the WireServer (`/machine`, `/machine/`, `/machine/{container}/{instance}`)
carries several APIs told apart by `comp` (any case); `GuestDispatcher.route` picks the
endpoint by path and `comp`, so each has its own route name in metrics and the journal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import ClassVar, Final, Protocol

from openimds.core.dispatch import Dispatcher
from openimds.core.endpoint import BaseEndpoint, Endpoint
from openimds.core.guest import documents
from openimds.core.guest.documents import GuestIds
from openimds.core.guest.reports import (
    AgentStatus,
    HealthReport,
    ReportError,
    parse_health,
    parse_provisioning_health,
    parse_status_blob,
    unwrap_status,
)
from openimds.core.http import JSON, TEXT, Request, Response
from openimds.core.vm import VmSnapshot

XML: Final = "text/xml; charset=utf-8"
EMPTY_JSON: Final = b"{}"


class SealError(ValueError):
    """The transport certificate or cipher a Certificates request names is unusable."""


class GuestPlane(Protocol):
    """What the endpoints need from outside a request (the guest feature provides it):
    reads, and the reports' writes (GuestReports)."""

    def record_health(self, vm: VmSnapshot, report: HealthReport) -> None: ...

    def record_status(self, vm: VmSnapshot, status: AgentStatus) -> None: ...

    def incarnation(self, vm: VmSnapshot) -> int:
        """The VM's goal-state incarnation: changes with its goal state, never goes back."""
        ...

    def wireserver_url(self) -> str:
        """The WireServer's base URL as guests reach it (http://168.63.129.16:80)."""
        ...

    def has_certificates(self, vm: VmSnapshot) -> bool: ...

    def sealed_certificates(self, vm: VmSnapshot, transport_cert: str, cipher: str) -> str:
        """The VM's certificates as a password-less PKCS#12 in CMS EnvelopedData to the
        transport certificate, base64; SealError when the certificate or cipher is bad."""
        ...


class GuestReports(Protocol):
    """Where a guest's reports are kept: writes, done before the answer is sent."""

    def record_health(self, vm: VmSnapshot, report: HealthReport) -> None:
        """Keep the VM's health report (written only when it changed)."""
        ...

    def record_status(self, vm: VmSnapshot, status: AgentStatus) -> None:
        """Keep the VM's agent status (written only when it changed)."""
        ...


def _xml(body: str, cacheable: bool = True) -> Response:
    return Response(200, body.encode(), XML, cacheable=cacheable)


def _bad(message: str, content_type: str = TEXT) -> Response:
    if content_type == JSON:
        return Response(400, json.dumps({"error": message}).encode(), JSON)
    return Response(400, message.encode(), TEXT)


def _not_found(message: str) -> Response:
    return Response(404, message.encode(), TEXT, cacheable=True)


def comp_of(request: Request) -> str:
    """`comp`, name and value in any case (agents differ; Azure does not mind)."""
    for key, value in request.query:
        if key.lower() == "comp":
            return value.lower()
    return ""


def param(request: Request, name: str) -> str:
    for key, value in request.query:
        if key.lower() == name:
            return value
    return ""


class _Wire(BaseEndpoint):
    def __init__(self, plane: GuestPlane) -> None:
        self.plane = plane

    def ids(self, vm: VmSnapshot) -> GuestIds:
        return GuestIds.of(vm)


class VersionsEndpoint(_Wire):
    name: ClassVar[str] = "wire.versions"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return _xml(documents.versions())


class GoalStateEndpoint(_Wire):
    name: ClassVar[str] = "wire.goalstate"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        plane = self.plane
        incarnation = plane.incarnation(vm)
        base = plane.wireserver_url()
        body = documents.goal_state(base, self.ids(vm), incarnation, plane.has_certificates(vm))
        return _xml(body)


def _own_instance(request: Request, ids: GuestIds) -> bool:
    """/machine/{container}/{instance} names the caller's own role instance."""
    segments = request.segments()
    return segments[1:] == (ids.container_id, ids.instance_id)


class ConfigEndpoint(_Wire):
    name: ClassVar[str] = "wire.config"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        ids = self.ids(vm)
        if not _own_instance(request, ids):
            return _not_found("No such role instance")
        incarnation = self.plane.incarnation(vm)
        kind = param(request, "type")
        body = documents.config_document(self.plane.wireserver_url(), ids, kind, incarnation)
        if body is None:
            return _bad(f"Bad request. Unknown configuration type {kind[:40]!r}")
        return _xml(body)


class CertificatesEndpoint(_Wire):
    """Never cached: each answer is encrypted to the certificate in the request."""

    name: ClassVar[str] = "wire.certificates"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        ids = self.ids(vm)
        if not _own_instance(request, ids):
            return _not_found("No such role instance")
        if not self.plane.has_certificates(vm):
            return _not_found("The role instance has no certificates")
        transport = request.header("x-ms-guest-agent-public-x509-cert")
        if not transport:
            return _bad("Bad request. x-ms-guest-agent-public-x509-cert is required")
        cipher = (request.header("x-ms-cipher-name") or "DES_EDE3_CBC").strip().upper()
        try:
            data = self.plane.sealed_certificates(vm, transport, cipher)
        except SealError as exc:
            return _bad(f"Bad request. {exc}")
        body = documents.certificate_file(self.plane.incarnation(vm), data)
        return _xml(body, cacheable=False)


def _own_report(report: HealthReport, ids: GuestIds) -> bool:
    # An agent that sent no ids (none does) is taken at its source address's word.
    return report.container_id in ("", ids.container_id) and report.instance_id in (
        "",
        ids.instance_id,
    )


class HealthEndpoint(_Wire):
    name: ClassVar[str] = "wire.health"
    methods: ClassVar[tuple[str, ...]] = ("POST",)

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        try:
            report = parse_health(request.body)
        except ReportError as exc:
            return _bad(str(exc))
        if not _own_report(report, self.ids(vm)):
            return _bad("Bad request. The report names another container or role instance")
        self.plane.record_health(vm, report)
        return Response(200, b"", XML)


class AcceptedEndpoint(_Wire):
    """Reports the WireServer takes and keeps nothing of (telemetry, role properties,
    waagent's HealthService), answered as Azure does."""

    methods: ClassVar[tuple[str, ...]] = ("POST",)
    status: ClassVar[int] = 200

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(self.status, b"", XML)


class TelemetryEndpoint(AcceptedEndpoint):
    name: ClassVar[str] = "wire.telemetry"


class RolePropertiesEndpoint(AcceptedEndpoint):
    name: ClassVar[str] = "wire.roleproperties"
    status: ClassVar[int] = 202


class HealthServiceEndpoint(AcceptedEndpoint):
    name: ClassVar[str] = "wire.healthservice"


class StatusBlobEndpoint(_Wire):
    """A status blob PUT straight to the StatusUploadBlob (the agents' fallback when the
    HostGAPlugin fails), as a block blob: 201 like Azure Storage."""

    name: ClassVar[str] = "wire.status"
    methods: ClassVar[tuple[str, ...]] = ("PUT",)

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if not _own_instance(request, self.ids(vm)):
            return _not_found("No such role instance")
        try:
            status = parse_status_blob(request.body)
        except ReportError as exc:
            return _bad(str(exc))
        self.plane.record_status(vm, status)
        return Response(201, b"", TEXT)


class ProvisioningHealthEndpoint(_Wire):
    """azure-init's JSON report."""

    name: ClassVar[str] = "wire.provisioning"
    methods: ClassVar[tuple[str, ...]] = ("POST",)

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        try:
            report = parse_provisioning_health(request.body)
        except ReportError as exc:
            return _bad(str(exc), JSON)
        self.plane.record_health(vm, report)
        return Response(200, EMPTY_JSON, JSON)


class UnknownComp(_Wire):
    name: ClassVar[str] = "wire.unknown"
    methods: ClassVar[tuple[str, ...]] = ("GET", "POST", "PUT")

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        comp = comp_of(request)
        what = f"comp={comp[:40]}" if comp else "a comp parameter"
        return _bad(f"Bad request. {request.method} {request.path} does not take {what}")


class GuestDispatcher(Dispatcher):
    """A service whose routing also reads `comp`; no Metadata header (the agents send
    none)."""

    def __init__(
        self,
        routes: Iterable[tuple[str, Endpoint]],
        picks: dict[str, Endpoint],
        unknown: Endpoint,
    ) -> None:
        super().__init__(routes, metadata_header=False)
        # "machine:{comp}" (/machine, /machine/), "instance:{comp}" (/machine/{container}/
        # {instance}), ":{comp}" (the root) -> endpoint; `unknown` for any other comp.
        self.picks = picks
        self.unknown = unknown

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return (*super().endpoints, *self.picks.values(), self.unknown)

    def route(self, request: Request) -> Endpoint | None:
        segments = request.segments()
        if segments and segments[0].lower() == "machine":
            if len(segments) == 1:
                where = "machine"
            elif len(segments) == 3:
                where = "instance"
            else:
                return None
            return self.picks.get(f"{where}:{comp_of(request)}", self.unknown)
        if not segments:
            return self.picks.get(f":{comp_of(request)}", self.unknown)
        return super().route(request)


def wireserver_dispatcher(plane: GuestPlane) -> GuestDispatcher:
    picks: dict[str, Endpoint] = {
        ":versions": VersionsEndpoint(plane),
        "machine:goalstate": GoalStateEndpoint(plane),
        "machine:health": HealthEndpoint(plane),
        "machine:telemetrydata": TelemetryEndpoint(plane),
        "machine:roleproperties": RolePropertiesEndpoint(plane),
        "instance:config": ConfigEndpoint(plane),
        "instance:certificates": CertificatesEndpoint(plane),
        "instance:status": StatusBlobEndpoint(plane),
    }
    routes: list[tuple[str, Endpoint]] = [
        ("/HealthService", HealthServiceEndpoint(plane)),
        ("/provisioning/health", ProvisioningHealthEndpoint(plane)),
    ]
    return GuestDispatcher(routes, picks, UnknownComp(plane))


# -- HostGAPlugin -------------------------------------------------------------------------
class HostGaVersions(BaseEndpoint):
    name: ClassVar[str] = "hostga.versions"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(
            200, json.dumps(list(documents.HOSTGA_VERSIONS)).encode(), JSON, cacheable=True
        )


class HostGaHealth(BaseEndpoint):
    name: ClassVar[str] = "hostga.health"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(200, b"", TEXT, cacheable=True)


class HostGaVmSettings(BaseEndpoint):
    """404: no FastTrack, so the agents take their goal state from the WireServer (a 500
    would trap waagent in protocol detection)."""

    name: ClassVar[str] = "hostga.vmsettings"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(404, b"", TEXT, cacheable=True)


class HostGaArtifact(BaseEndpoint):
    name: ClassVar[str] = "hostga.artifact"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(404, b"", TEXT, cacheable=True)


class HostGaStatus(BaseEndpoint):
    name: ClassVar[str] = "hostga.status"
    methods: ClassVar[tuple[str, ...]] = ("PUT",)

    def __init__(self, reports: GuestReports) -> None:
        self.reports = reports

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        try:
            status = parse_status_blob(unwrap_status(request.body))
        except ReportError as exc:
            return _bad(str(exc), JSON)
        self.reports.record_status(vm, status)
        return Response(200, b"", TEXT)


class HostGaAgentLog(BaseEndpoint):
    """waagent's log upload: taken and dropped (logs may hold secrets)."""

    name: ClassVar[str] = "hostga.agentlog"
    methods: ClassVar[tuple[str, ...]] = ("PUT",)

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        return Response(200, b"", TEXT)


def hostgaplugin_dispatcher(reports: GuestReports) -> Dispatcher:
    return Dispatcher(
        [
            ("/versions", HostGaVersions()),
            ("/health", HostGaHealth()),
            ("/vmSettings", HostGaVmSettings()),
            ("/extensionArtifact", HostGaArtifact()),
            ("/status", HostGaStatus(reports)),
            ("/vmAgentLog", HostGaAgentLog()),
        ],
        metadata_header=False,
    )
