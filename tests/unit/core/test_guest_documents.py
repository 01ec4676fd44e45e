"""The WireServer's documents: parseable, with the ids and links the agents read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from openimds.core.guest import documents
from openimds.core.guest.documents import GuestIds
from openimds.core.vm import VmSnapshot

BASE = "http://168.63.129.16:80"
VM_ID = "11111111-2222-3333-4444-555555555555"


def _vm(name: str = "web-1", vm_id: str = VM_ID, ip: str = "10.0.0.4") -> VmSnapshot:
    network = {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": ip}]}}]}
    return VmSnapshot(
        id=name,
        name=name,
        revision=1,
        instance={"compute": {"name": name, "vmId": vm_id}, "network": network},
    )


def test_ids_are_fixed_by_the_vm_and_differ_between_vms() -> None:
    one, again, other = GuestIds.of(_vm()), GuestIds.of(_vm()), GuestIds.of(_vm("b", "x"))
    assert one == again
    assert one.instance_id == f"{VM_ID}.web-1"
    assert one.private_ip == "10.0.0.4"
    assert one.container_id != other.container_id
    assert len(one.container_id) == 36 and one.container_id.count("-") == 4


def test_versions_lists_both_protocol_versions_in_preferred_and_supported() -> None:
    root = ET.fromstring(documents.versions())
    for section in ("Preferred", "Supported"):
        listed = [v.text for v in root.find(section) or []]
        assert "2012-11-30" in listed and "2015-04-05" in listed


def test_goal_state_has_the_three_ids_and_every_configuration_link() -> None:
    ids = GuestIds.of(_vm())
    root = ET.fromstring(documents.goal_state(BASE, ids, 7, certificates=True))
    assert root.findtext("Incarnation") == "7"
    assert root.findtext("Container/ContainerId") == ids.container_id
    role = root.find("Container/RoleInstanceList/RoleInstance")
    assert role is not None and role.findtext("InstanceId") == ids.instance_id
    config = role.find("Configuration")
    assert config is not None
    hosting = config.findtext("HostingEnvironmentConfig") or ""
    assert hosting.startswith(f"{BASE}/machine/{ids.container_id}/{ids.instance_id}?")
    assert "type=hostingEnvironmentConfig" in hosting and "incarnation=7" in hosting
    for name in ("SharedConfig", "ExtensionsConfig", "FullConfig", "Certificates", "ConfigName"):
        assert config.findtext(name), name


def test_no_certificates_link_without_certificates() -> None:
    root = ET.fromstring(documents.goal_state(BASE, GuestIds.of(_vm()), 1, certificates=False))
    assert root.find(".//Certificates") is None


def test_configuration_documents_carry_what_the_agents_read() -> None:
    ids = GuestIds.of(_vm())
    hosting = ET.fromstring(documents.hosting_environment(ids, 3))
    incarnation, role = hosting.find("Incarnation"), hosting.find("Role")
    assert incarnation is not None and incarnation.get("instance") == "web-1"
    assert role is not None and role.get("name") == documents.ROLE_NAME
    shared = ET.fromstring(documents.shared_config(ids, 3))
    instance = shared.find("Instances/Instance")
    assert instance is not None and instance.get("address") == "10.0.0.4"
    extensions = ET.fromstring(documents.extensions_config(BASE, ids, 3))
    blob = extensions.find("StatusUploadBlob")
    assert blob is not None and blob.get("statusBlobType") == "BlockBlob"
    assert blob.text == documents.status_blob_url(BASE, ids)
    assert ET.fromstring(documents.full_config(ids, 3)).tag == "RDConfig"


def test_config_document_type_is_matched_in_any_case() -> None:
    ids = GuestIds.of(_vm())
    assert documents.config_document(BASE, ids, "SHAREDCONFIG", 1) == documents.shared_config(
        ids, 1
    )
    assert documents.config_document(BASE, ids, "nonsense", 1) is None


def test_certificate_file_wraps_its_data_in_short_lines() -> None:
    text = documents.certificate_file(2, "A" * 200)
    root = ET.fromstring(text)
    assert root.findtext("Format") == "Pkcs7BlobWithPfxContents"
    data = root.findtext("Data") or ""
    assert data.replace("\n", "") == "A" * 200
    assert max(len(line) for line in data.splitlines()) <= 76


def test_names_are_escaped_in_xml() -> None:
    ids = GuestIds.of(_vm(name='a&b"<c>'))
    for text in (
        documents.hosting_environment(ids, 1),
        documents.goal_state(BASE, ids, 1, certificates=False),
    ):
        ET.fromstring(text)  # well-formed despite the name
