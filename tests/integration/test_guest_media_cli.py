"""`openimds vm media` and `vm kit` against a real server: the VM read through the admin
API, the ISO written for its owner only, the kit's text for QEMU and libvirt, and bad
input refused in one line with exit 2."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pycdlib

from tests.support.server import RunningServer, server_fixture

FLEET = """
vms:
  - name: web-1
    addresses: [127.0.0.1]
    instance:
      compute:
        name: web-1
        vmId: 5c1d8f3e-2b4a-4c6d-9e8f-1a2b3c4d5e6f
        osProfile: {adminUsername: ops, computerName: web-1}
        publicKeys: [{keyData: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA ops@lab"}]
      network:
        interface:
          - macAddress: 000D3A0A0B0C
            ipv4: {subnet: [{address: 198.51.100.0, prefix: "24"}]}
  - name: bare
    addresses: [127.0.0.2]
    instance: {compute: {name: bare, vmId: 6d2e9f4a-3c5b-4d7e-8f9a-2b3c4d5e6f7a}}
"""


server = server_fixture("server", config_text=FLEET)


def _ovf(iso: Path) -> ET.Element:
    image = pycdlib.PyCdlib()
    image.open(str(iso))
    out = io.BytesIO()
    image.get_file_from_iso_fp(out, rr_path="/ovf-env.xml")
    image.close()
    return ET.fromstring(out.getvalue())


def _refused(server: RunningServer, *args: str) -> str:
    done = server.cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr


def test_media_is_written_for_its_owner_from_the_served_vm(
    server: RunningServer, tmp_path: Path
) -> None:
    out = tmp_path / "web-1.iso"
    done = server.cli("vm", "media", "web-1", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"wrote {out} (provisioning media of web-1, ")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    root = _ovf(out)
    ns = {"wa": "http://schemas.microsoft.com/windowsazure"}
    config = "./wa:ProvisioningSection/wa:LinuxProvisioningConfigurationSet/"
    assert root.findtext(config + "wa:HostName", namespaces=ns) == "web-1"
    assert root.findtext(config + "wa:UserName", namespaces=ns) == "ops"
    key = config + "wa:SSH/wa:PublicKeys/wa:PublicKey/"
    assert root.findtext(key + "wa:Path", namespaces=ns) == "/home/ops/.ssh/authorized_keys"
    assert root.findtext(key + "wa:Value", namespaces=ns) == (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA ops@lab"
    )


def test_media_of_a_vm_without_os_profile_needs_an_admin_user(
    server: RunningServer, tmp_path: Path
) -> None:
    message = _refused(server, "vm", "media", "bare", "-o", str(tmp_path / "bare.iso"))
    assert message.startswith("openimds: VM bare: osProfile.adminUsername is empty")
    assert not (tmp_path / "bare.iso").exists()
    out = tmp_path / "bare.iso"
    done = server.cli("vm", "media", "bare", "-o", str(out), "--admin-username", "ops")
    assert done.returncode == 0, done.stderr
    ns = {"wa": "http://schemas.microsoft.com/windowsazure"}
    host = "./wa:ProvisioningSection/wa:LinuxProvisioningConfigurationSet/wa:HostName"
    assert _ovf(out).findtext(host, namespaces=ns) == "bare"  # computerName: the VM's name


def test_bad_input_is_one_line_and_exit_2(server: RunningServer, tmp_path: Path) -> None:
    assert _refused(server, "vm", "media", "nosuch", "-o", str(tmp_path / "x.iso")) == (
        "openimds: no VM named nosuch\n"
    )
    missing = tmp_path / "no" / "dir" / "x.iso"
    assert _refused(server, "vm", "media", "web-1", "-o", str(missing)) == (
        f"openimds: {missing}: cannot write: No such file or directory\n"
    )
    assert _refused(server, "vm", "media", "web-1", "-o", str(tmp_path)) == (
        f"openimds: {tmp_path}: cannot write: Is a directory\n"
    )
    gone = tmp_path / "gone"
    assert _refused(server, "vm", "media", "web-1", "--custom-data", str(gone)) == (
        f"openimds: --custom-data {gone}: cannot read: No such file or directory\n"
    )
    assert _refused(server, "vm", "kit", "web-1") == "openimds: vm kit: give --qemu or --libvirt\n"
    both = _refused(server, "vm", "kit", "web-1", "--qemu", "--libvirt")
    assert both == "openimds: vm kit: give --qemu or --libvirt, not both\n"
    assert _refused(server, "vm", "kit", "nosuch", "--qemu") == "openimds: no VM named nosuch\n"
    assert "network.interface[0].macAddress is empty" in _refused(
        server, "vm", "kit", "bare", "--qemu"
    )


def test_kit_for_qemu_is_bash_that_defines_the_arguments(server: RunningServer) -> None:
    done = server.cli("vm", "kit", "web-1", "--qemu", "--media", "/srv/web-1.iso")
    assert done.returncode == 0, done.stderr
    script = done.stdout + 'printf "%s\\n" "${qemu_args[@]}" "${dnsmasq_args[@]}"'
    args = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert args[:2] == ["-cpu", "max,hypervisor=off"]
    assert "file=/srv/web-1.iso,media=cdrom,readonly=on" in args
    assert any(a.endswith("mac=00:0d:3a:0a:0b:0c") for a in args)
    assert "--dhcp-host=00:0d:3a:0a:0b:0c,127.0.0.1,web-1" in args
    assert "--dhcp-option-force=245,168.63.129.16" in args
    assert any(a.startswith("--dhcp-option=121,169.254.169.254/32,198.51.100.1,") for a in args)


def test_kit_for_libvirt_is_a_domain(server: RunningServer) -> None:
    done = server.cli("vm", "kit", "web-1", "--libvirt", "--uefi", "--bridge", "farm0")
    assert done.returncode == 0, done.stderr
    domain = ET.fromstring(done.stdout)
    assert domain.findtext("uuid") == "5c1d8f3e-2b4a-4c6d-9e8f-1a2b3c4d5e6f"
    source = domain.find("./devices/disk/source")
    assert source is not None
    file = source.get("file") or ""
    assert os.path.isabs(file) and file.endswith("/web-1.iso")  # libvirt needs it absolute
