"""The WireServer's routing by path and `comp`, and its endpoints' answers, in the core."""

from __future__ import annotations

import pytest

from openimds.core.guest import api
from openimds.core.guest.documents import GuestIds
from openimds.core.guest.reports import AgentStatus, HealthReport
from openimds.core.http import Request
from openimds.core.vm import VmSnapshot

VM = VmSnapshot(id="a", name="a", revision=1, instance={"compute": {"name": "a", "vmId": "v-1"}})
IDS = GuestIds.of(VM)
INSTANCE = f"/machine/{IDS.container_id}/{IDS.instance_id}"


class Plane:
    def __init__(self) -> None:
        self.sealed: list[tuple[str, str]] = []
        self.kept: list[object] = []  # the reports written, in order

    def record_health(self, vm: VmSnapshot, report: HealthReport) -> None:
        self.kept.append(report)

    def record_status(self, vm: VmSnapshot, status: AgentStatus) -> None:
        self.kept.append(status)

    def incarnation(self, vm: VmSnapshot) -> int:
        return 4

    def wireserver_url(self) -> str:
        return "http://168.63.129.16:80"

    def has_certificates(self, vm: VmSnapshot) -> bool:
        return True

    def sealed_certificates(self, vm: VmSnapshot, transport_cert: str, cipher: str) -> str:
        if transport_cert == "bad":
            raise api.SealError("the transport certificate is not base64 DER")
        self.sealed.append((transport_cert, cipher))
        return "QUJD"


PLANE = Plane()
SERVICE = api.wireserver_dispatcher(PLANE)


def _request(target: str, method: str = "GET", body: bytes = b"", **headers: str) -> Request:
    from urllib.parse import parse_qsl

    path, _, query = target.partition("?")
    return Request(
        method,
        path,
        tuple(parse_qsl(query, keep_blank_values=True)),
        tuple((k.replace("_", "-"), v) for k, v in headers.items()),
        body,
    )


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("/?comp=versions", "wire.versions"),
        ("/machine/?comp=goalstate", "wire.goalstate"),
        ("/machine?comp=goalstate", "wire.goalstate"),
        ("/machine?comp=GoalState", "wire.goalstate"),
        ("/machine?Comp=health", "wire.health"),
        ("/machine?comp=telemetrydata", "wire.telemetry"),
        ("/machine?comp=roleProperties", "wire.roleproperties"),
        (f"{INSTANCE}?comp=config&type=sharedConfig", "wire.config"),
        (f"{INSTANCE}?comp=certificates", "wire.certificates"),
        (f"{INSTANCE}?comp=status", "wire.status"),
        ("/machine?comp=config", "wire.unknown"),
        ("/machine?comp=nothing", "wire.unknown"),
        ("/?comp=goalstate", "wire.unknown"),
        ("/HealthService", "wire.healthservice"),
        ("/provisioning/health", "wire.provisioning"),
    ],
)
def test_routes(target: str, route: str) -> None:
    endpoint = SERVICE.route(_request(target))
    assert endpoint is not None and endpoint.name == route


def test_unknown_paths_route_nowhere() -> None:
    assert SERVICE.route(_request("/metadata/instance")) is None
    assert SERVICE.route(_request("/machine/a/b/c")) is None


def test_every_endpoint_is_listed_for_the_start_checks() -> None:
    names = {endpoint.name for endpoint in SERVICE.endpoints}
    assert {"wire.health", "wire.status", "wire.unknown", "wire.goalstate"} <= names


def _answer(
    target: str, method: str = "GET", body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    response = SERVICE.handle(_request(target, method, body, **headers), VM, 0.0)
    return response.status, response.body


def test_goal_state_is_cacheable_and_certificates_are_not() -> None:
    goal = SERVICE.handle(_request("/machine/?comp=goalstate"), VM, 0.0)
    assert goal.status == 200 and goal.cacheable and b"<Incarnation>4</Incarnation>" in goal.body
    certs = SERVICE.handle(
        _request(f"{INSTANCE}?comp=certificates", x_ms_guest_agent_public_x509_cert="MII"),
        VM,
        0.0,
    )
    assert certs.status == 200 and not certs.cacheable and b"<Data>QUJD</Data>" in certs.body


def test_another_vms_instance_path_is_not_found() -> None:
    other = f"/machine/{IDS.container_id}/someone-else?comp=config&type=sharedConfig"
    assert _answer(other)[0] == 404


def test_certificates_need_a_usable_transport_certificate() -> None:
    assert _answer(f"{INSTANCE}?comp=certificates")[0] == 400
    status, body = _answer(f"{INSTANCE}?comp=certificates", x_ms_guest_agent_public_x509_cert="bad")
    assert status == 400 and b"not base64 DER" in body


def test_a_health_report_naming_another_role_instance_is_refused() -> None:
    report = (
        "<Health><Container><ContainerId>{c}</ContainerId><RoleInstanceList><Role>"
        "<InstanceId>{i}</InstanceId><Health><State>Ready</State></Health></Role>"
        "</RoleInstanceList></Container></Health>"
    )
    own = report.format(c=IDS.container_id, i=IDS.instance_id).encode()
    before = len(PLANE.kept)
    response = SERVICE.handle(_request("/machine?comp=health", "POST", own), VM, 0.0)
    assert response.status == 200 and len(PLANE.kept) == before + 1
    other = report.format(c=IDS.container_id, i="x.other").encode()
    response = SERVICE.handle(_request("/machine?comp=health", "POST", other), VM, 0.0)
    assert response.status == 400 and len(PLANE.kept) == before + 1


def test_the_wrong_method_is_a_405() -> None:
    assert _answer("/machine?comp=health")[0] == 405


def test_host_plugin_answers() -> None:
    reports = Plane()
    service = api.hostgaplugin_dispatcher(reports)
    for target, status in (("/versions", 200), ("/health", 200), ("/vmSettings", 404)):
        response = service.handle(_request(target), VM, 0.0)
        assert response.status == status
    assert b"2015-09-01" in service.handle(_request("/versions"), VM, 0.0).body
    bad = service.handle(_request("/status", "PUT", b"{"), VM, 0.0)
    assert bad.status == 400 and reports.kept == []
