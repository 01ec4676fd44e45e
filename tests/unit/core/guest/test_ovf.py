"""ovf-env.xml from a VM's instance document (core/guest/ovf.py): Azure's layout, the
values both agents require, and refusals that name the field. The agents' own parsers
read it in tests/clients/test_provisioning_media.py."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from openimds.core.guest import ovf
from tests.support.imds import reference_vm_data

NS = {
    "ovf": "http://schemas.dmtf.org/ovf/environment/1",
    "wa": "http://schemas.microsoft.com/windowsazure",
}
DEMO = reference_vm_data()["instance"]
SET = "./wa:ProvisioningSection/wa:LinuxProvisioningConfigurationSet"


def parsed(instance: dict[str, Any], **given: Any) -> ET.Element:
    return ET.fromstring(ovf.ovf_env(ovf.from_instance(instance, **given)))


def text(root: ET.Element, path: str) -> str | None:
    node = root.find(path, NS)
    return None if node is None else node.text


def with_compute(**compute: Any) -> dict[str, Any]:
    return {"compute": {**DEMO["compute"], **compute}, "network": DEMO["network"]}


def test_the_demo_vm_as_azure_writes_it() -> None:
    root = parsed(DEMO)
    assert root.tag == "{http://schemas.dmtf.org/ovf/environment/1}Environment"
    assert text(root, "./wa:ProvisioningSection/wa:Version") == "1.0"
    assert text(root, SET + "/wa:HostName") == "demo-vm"
    assert text(root, SET + "/wa:UserName") == "azureuser"
    assert text(root, SET + "/wa:DisableSshPasswordAuthentication") == "true"
    assert root.find(SET + "/wa:UserPassword", NS) is None
    assert root.find(SET + "/wa:CustomData", NS) is None
    [key] = root.findall(SET + "/wa:SSH/wa:PublicKeys/wa:PublicKey", NS)
    assert text(key, "./wa:Path") == "/home/azureuser/.ssh/authorized_keys"
    assert text(key, "./wa:Value") == DEMO["compute"]["publicKeys"][0]["keyData"]
    assert key.find("./wa:Fingerprint", NS) is None
    settings = "./wa:PlatformSettingsSection/wa:PlatformSettings/"
    assert text(root, settings + "wa:ProvisionGuestAgent") == "true"
    assert text(root, settings + "wa:PreprovisionedVm") == "false"


def test_custom_data_and_password_are_carried() -> None:
    root = parsed(DEMO, password="Str0ng&<pass>", custom_data=b"\x00binary\xff")
    assert text(root, SET + "/wa:UserPassword") == "Str0ng&<pass>"  # escaped, read back
    assert base64.b64decode(text(root, SET + "/wa:CustomData") or "") == b"\x00binary\xff"


def test_a_key_given_as_a_certificate_is_named_by_its_thumbprint() -> None:
    der = b"\x30\x82\x01\x0a certificate bytes"
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der).decode()
    pem += "-----END CERTIFICATE-----\n"
    root = parsed(with_compute(publicKeys=[{"keyData": pem, "path": ""}]))
    [key] = root.findall(SET + "/wa:SSH/wa:PublicKeys/wa:PublicKey", NS)
    assert text(key, "./wa:Fingerprint") == hashlib.sha1(der).hexdigest().upper()
    assert key.find("./wa:Value", NS) is None
    assert text(key, "./wa:Path") == "/home/azureuser/.ssh/authorized_keys"  # the default


def test_flags_fill_in_or_replace_the_profile() -> None:
    bare = {"compute": {"name": "bare-vm", "vmId": DEMO["compute"]["vmId"]}}
    root = parsed(bare, username="ops", extra_keys=("ssh-ed25519 AAAA ops@lab\n",))
    assert text(root, SET + "/wa:HostName") == "bare-vm"  # computerName defaults to the name
    assert text(root, SET + "/wa:UserName") == "ops"
    assert text(root, SET + "/wa:SSH/wa:PublicKeys/wa:PublicKey/wa:Path") == (
        "/home/ops/.ssh/authorized_keys"
    )
    assert (
        text(root, SET + "/wa:SSH/wa:PublicKeys/wa:PublicKey/wa:Value")
        == "ssh-ed25519 AAAA ops@lab"
    )
    # Azure's Linux default is keys only.
    assert text(root, SET + "/wa:DisableSshPasswordAuthentication") == "true"


def test_password_authentication_allowed_when_the_profile_says_so() -> None:
    profile = {**DEMO["compute"]["osProfile"], "disablePasswordAuthentication": "false"}
    root = parsed(with_compute(osProfile=profile))
    assert text(root, SET + "/wa:DisableSshPasswordAuthentication") == "false"


@pytest.mark.parametrize(
    ("instance", "given", "named"),
    [
        ({"compute": {"name": "x"}}, {}, "osProfile.adminUsername is empty"),
        ({"compute": {"osProfile": {"adminUsername": "u"}}}, {}, "osProfile.computerName"),
        (
            with_compute(osProfile={"computerName": "bad_name", "adminUsername": "u"}),
            {},
            "bad_name",
        ),
        (DEMO, {"password": "Ab1"}, "admin password: 3 characters"),
        (DEMO, {"password": "alllowercase"}, "admin password: Azure needs 3 of"),
        (DEMO, {"custom_data": b"x" * 65536}, "custom data: 65536 bytes"),
        (
            with_compute(
                publicKeys=[
                    {"keyData": "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"}
                ]
            ),
            {},
            "compute.publicKeys",
        ),
    ],
)
def test_refusals_name_the_field(
    instance: dict[str, Any], given: dict[str, Any], named: str
) -> None:
    with pytest.raises(ovf.NotProvisionable, match=named.replace(".", r"\.")):
        ovf.from_instance(instance, **given)


def test_the_largest_custom_data_azure_takes_is_carried() -> None:
    root = parsed(DEMO, custom_data=b"y" * ovf.MAX_CUSTOM_DATA)
    assert len(base64.b64decode(text(root, SET + "/wa:CustomData") or "")) == 65535
