"""The WireServer's and HostGAPlugin's documents, rendered from a VM (docs/guests.md).

The shapes follow what the agents parse (WALinuxAgent `common/protocol/goal_state.py`
and `extensions_goal_state_from_extensions_config.py`, cloud-init
`sources/helpers/azure.py`, afterburn) and the samples in WALinuxAgent's
`tests/data/wire/`. Every function is pure: the VM's ids, the incarnation and the base
URL come in, text goes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from openimds.core.vm import VmSnapshot

PROTOCOL_VERSION: Final = "2012-11-30"  # what every agent sends in x-ms-version
# Azure lists more; the agents look for 2012-11-30 (waagent, cloud-init) and 2015-04-05.
VERSIONS: Final = ("2015-04-05", "2012-11-30", "2012-09-15", "2012-05-15", "2011-12-31")
HOSTGA_VERSIONS: Final = ("2015-09-01", "2012-11-30")  # waagent needs 2015-09-01
XML_HEAD: Final = '<?xml version="1.0" encoding="utf-8"?>\n'
ROLE_NAME: Final = "MachineRole"
CONFIG_TYPES: Final = ("hostingEnvironmentConfig", "sharedConfig", "extensionsConfig", "fullConfig")


def _guid(*parts: str) -> str:
    """A GUID fixed by its inputs (a name-based id: same VM, same id on every node)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


@dataclass(frozen=True, slots=True)
class GuestIds:
    """What names a VM to its agents: the container (Azure's host-side deployment of the
    VM) and the role instance, both fixed by the VM's vmId and name."""

    vm_id: str
    name: str
    container_id: str
    instance_id: str
    private_ip: str

    @classmethod
    def of(cls, vm: VmSnapshot) -> GuestIds:
        vm_id = str(vm.compute.get("vmId") or _guid("vm", vm.name))
        name = str(vm.compute.get("name") or vm.name)
        return cls(
            vm_id=vm_id,
            name=name,
            container_id=_guid("container", vm_id),
            instance_id=f"{vm_id}.{name}",
            private_ip=_private_ip(vm),
        )

    def config_name(self, incarnation: int) -> str:
        return f"{self.instance_id}.{incarnation}.{self.instance_id}.1.xml"


def _private_ip(vm: VmSnapshot) -> str:
    network: Any = vm.instance.get("network")
    try:
        return str(network["interface"][0]["ipv4"]["ipAddress"][0]["privateIpAddress"])
    except (KeyError, IndexError, TypeError):
        return vm.addresses[0] if vm.addresses else ""


def machine_url(base: str, ids: GuestIds) -> str:
    """Where the role instance's documents live: /machine/{container}/{instance}."""
    return f"{base}/machine/{ids.container_id}/{quote(ids.instance_id, safe='.')}"


def config_url(base: str, ids: GuestIds, kind: str, incarnation: int) -> str:
    return f"{machine_url(base, ids)}?comp=config&type={kind}&incarnation={incarnation}"


def certificates_url(base: str, ids: GuestIds, incarnation: int) -> str:
    return f"{machine_url(base, ids)}?comp=certificates&incarnation={incarnation}"


def status_blob_url(base: str, ids: GuestIds) -> str:
    """The StatusUploadBlob: the agents PUT their status here (through the HostGAPlugin,
    or directly as a block blob when that fails); the WireServer takes both."""
    return f"{machine_url(base, ids)}?comp=status"


def versions() -> str:
    listed = "".join(f"<Version>{v}</Version>" for v in VERSIONS)
    return (
        f"{XML_HEAD}<Versions>\n  <Preferred><Version>{VERSIONS[0]}</Version>"
        f"<Version>{PROTOCOL_VERSION}</Version></Preferred>\n"
        f"  <Supported>{listed}</Supported>\n</Versions>\n"
    )


def goal_state(base: str, ids: GuestIds, incarnation: int, certificates: bool) -> str:
    """The goal state; the Certificates URL only when the VM has certificates (as Azure)."""
    urls = "".join(
        f"<{kind[0].upper()}{kind[1:]}>{escape(config_url(base, ids, kind, incarnation))}"
        f"</{kind[0].upper()}{kind[1:]}>\n          "
        for kind in CONFIG_TYPES
    )
    certs = (
        f"<Certificates>{escape(certificates_url(base, ids, incarnation))}</Certificates>\n"
        "          "
        if certificates
        else ""
    )
    return f"""{XML_HEAD}<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="goalstate10.xsd">
  <Version>{PROTOCOL_VERSION}</Version>
  <Incarnation>{incarnation}</Incarnation>
  <Machine>
    <ExpectedState>Started</ExpectedState>
    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>
    <LBProbePorts><Port>16001</Port></LBProbePorts>
    <ExpectHealthReport>FALSE</ExpectHealthReport>
  </Machine>
  <Container>
    <ContainerId>{ids.container_id}</ContainerId>
    <RoleInstanceList>
      <RoleInstance>
        <InstanceId>{escape(ids.instance_id)}</InstanceId>
        <State>Started</State>
        <Configuration>
          {urls}{certs}<ConfigName>{escape(ids.config_name(incarnation))}</ConfigName>
        </Configuration>
      </RoleInstance>
    </RoleInstanceList>
  </Container>
</GoalState>
"""


def _deployment(ids: GuestIds, incarnation: int) -> str:
    deployment = ids.container_id.replace("-", "")
    return (
        f'<Deployment name="{deployment}" guid="{{{ids.container_id}}}" '
        f'incarnation="{incarnation}" isNonCancellableTopologyChangeEnabled="false">\n'
        f'    <Service name={quoteattr(ids.name)} guid="{{{_guid("service", ids.vm_id)}}}" />\n'
        f'    <ServiceInstance name="{deployment}.0" guid="{{{_guid("si", ids.vm_id)}}}" />\n'
        "  </Deployment>\n"
        f'  <Incarnation number="{incarnation}" instance={quoteattr(ids.name)} '
        f'guid="{{{_guid("incarnation", ids.vm_id, str(incarnation))}}}" />\n'
        f'  <Role guid="{{{_guid("role", ids.vm_id)}}}" name="{ROLE_NAME}" '
        'hostingEnvironmentVersion="1" software="" softwareType="ApplicationPackage" '
        'entryPoint="" parameters="" settleTimeSeconds="10" />\n'
    )


def hosting_environment(ids: GuestIds, incarnation: int) -> str:
    """waagent reads Incarnation@instance (the VM name), Role@name and Deployment@name."""
    return (
        f'{XML_HEAD}<HostingEnvironmentConfig version="1.0.0.0" '
        f'goalStateIncarnation="{incarnation}">\n'
        "  <StoredCertificates />\n"
        f"  {_deployment(ids, incarnation)}"
        '  <HostingEnvironmentSettings name="full" Runtime="rd_fabric_stable.openimds">\n'
        '    <CAS mode="full" />\n    <PrivilegeLevel mode="max" />\n'
        "    <AdditionalProperties><CgiHandlers></CgiHandlers></AdditionalProperties>\n"
        "  </HostingEnvironmentSettings>\n"
        "  <ApplicationSettings />\n"
        "  <ResourceReferences />\n"
        "</HostingEnvironmentConfig>\n"
    )


def _instances(ids: GuestIds) -> str:
    return (
        "  <Instances>\n"
        f"    <Instance id={quoteattr(ids.name)} address={quoteattr(ids.private_ip)}>\n"
        '      <FaultDomains randomId="0" updateId="0" updateCount="0" />\n'
        "      <InputEndpoints />\n"
        "    </Instance>\n"
        "  </Instances>\n"
    )


def shared_config(ids: GuestIds, incarnation: int) -> str:
    """afterburn reads Instances/Instance@address (the VM's private address)."""
    return (
        f'{XML_HEAD}<SharedConfig version="1.0.0.0" goalStateIncarnation="{incarnation}">\n'
        f"  {_deployment(ids, incarnation)}"
        '  <LoadBalancerSettings timeoutSeconds="0" waitLoadBalancerProbeCount="8">\n'
        f'    <Probes><Probe name="{ROLE_NAME}" /></Probes>\n'
        "  </LoadBalancerSettings>\n"
        "  <OutputEndpoints />\n"
        f"{_instances(ids)}"
        "</SharedConfig>\n"
    )


def full_config(ids: GuestIds, incarnation: int) -> str:
    return (
        f'{XML_HEAD}<RDConfig version="1.0.0.0" goalStateIncarnation="{incarnation}">\n'
        "  <StoredCertificates />\n"
        f"  {_deployment(ids, incarnation)}"
        f"{_instances(ids)}"
        "</RDConfig>\n"
    )


def extensions_config(base: str, ids: GuestIds, incarnation: int) -> str:
    """No extensions and no agent families (the agent keeps its own version): what the
    agents need is the StatusUploadBlob, without which every status report fails."""
    blob = escape(status_blob_url(base, ids))
    activity = _guid("activity", ids.vm_id, str(incarnation))
    return (
        f'{XML_HEAD}<Extensions version="1.0.0.0" goalStateIncarnation="{incarnation}">'
        '<GuestAgentExtension xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
        "  <GAFamilies />\n"
        "</GuestAgentExtension>\n"
        "<Plugins />\n"
        "<PluginSettings />\n"
        f'<StatusUploadBlob statusBlobType="BlockBlob">{blob}</StatusUploadBlob>\n'
        f'<InVMGoalStateMetaData inSvdSeqNo="{incarnation}" createdOnTicks="0" '
        f'activityId="{activity}" correlationId="{_guid("correlation", activity)}" />\n'
        "</Extensions>\n"
    )


def certificate_file(incarnation: int, data_b64: str) -> str:
    """The Certificates document; Data is base64 DER CMS, in lines (openssl's S/MIME
    reader, which the agents use, wants them short)."""
    lines = "\n".join(data_b64[i : i + 76] for i in range(0, len(data_b64), 76))
    return (
        f"{XML_HEAD}<CertificateFile><Version>{PROTOCOL_VERSION}</Version>"
        f"<Incarnation>{incarnation}</Incarnation>"
        f"<Format>Pkcs7BlobWithPfxContents</Format><Data>{lines}</Data></CertificateFile>\n"
    )


def config_document(base: str, ids: GuestIds, kind: str, incarnation: int) -> str | None:
    """One configuration document by its `type` (any case); None for an unknown type."""
    kind = kind.lower()
    if kind == "extensionsconfig":
        return extensions_config(base, ids, incarnation)
    render = _CONFIG_DOCUMENTS.get(kind)
    return None if render is None else render(ids, incarnation)


_CONFIG_DOCUMENTS: Final[Mapping[str, Callable[[GuestIds, int], str]]] = {
    "hostingenvironmentconfig": hosting_environment,
    "sharedconfig": shared_config,
    "fullconfig": full_config,
}
