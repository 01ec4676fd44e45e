"""The media `openimds vm media` writes, read as the guest's agents read it: the ISO
checked by blkid (what cloud-init's find_devs_with asks) and its file found by name by an
independent reader (isoinfo, Rock Ridge then Joliet), then parsed by Debian's cloud-init
(`load_azure_ds_dir`) and waagent (`OvfEnv`), each in its own code."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.sandbox import LoopbackOnlyNetwork, client_path, run_probe
from tests.support.server import RunningServer, server_fixture

pytestmark = pytest.mark.clients

CERT_KEY = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUW6vGsfrDL3w0ESlP+VIaqBM7R2cwCgYIKoZIzj0EAwIw\n"
    "-----END CERTIFICATE-----\n"
)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q me@lab"
VM = f"""
name: lab-1
addresses: [127.0.0.1]
instance:
  compute:
    name: lab-1
    vmId: 9d1b2a3c-4e5f-4a6b-8c7d-0e1f2a3b4c5d
    osProfile: {{adminUsername: ops, computerName: lab-host, disablePasswordAuthentication: false}}
    publicKeys:
      - {{keyData: "{KEY}", path: /home/ops/.ssh/authorized_keys}}
      - keyData: |
{"".join("          " + line + chr(10) for line in CERT_KEY.splitlines())}
  network:
    interface: [{{macAddress: 000D3A112233}}]
"""
PASSWORD = "Lab-Passw0rd"
CUSTOM = b"#cloud-config\nruncmd: [[touch, /run/from-custom-data]]\n"


server = server_fixture("server", config_text=VM)


@pytest.fixture(scope="module")
def iso(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("iso")
    (tmp / "custom").write_bytes(CUSTOM)
    (tmp / "password").write_text(PASSWORD + "\n")
    out = tmp / "lab-1.iso"
    args = ["vm", "media", "lab-1", "-o", str(out), "--custom-data", str(tmp / "custom")]
    done = server.cli(*args, "--admin-password-file", str(tmp / "password"))
    assert done.returncode == 0, done.stderr
    return out


def _isoinfo(iso: Path, *args: str) -> str:
    done = subprocess.run(
        ["isoinfo", *args, "-i", str(iso)], capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode()


@pytest.fixture(scope="module")
def report(iso: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    seen = tmp_path_factory.mktemp("mounted")
    (seen / "ovf-env.xml").write_text(_isoinfo(iso, "-R", "-x", "/ovf-env.xml"))
    net = LoopbackOnlyNetwork()
    try:
        dist = client_path("cloud-init", "cloudinit")
        client_path("waagent", "azurelinuxagent")
        return run_probe(net, "ovf_probe.py", dist, [str(seen), PASSWORD])
    finally:
        net.close()


def test_blkid_sees_an_iso9660_volume_with_azures_label(iso: Path) -> None:
    done = subprocess.run(
        ["blkid", "-p", "-o", "export", str(iso)], capture_output=True, text=True, check=True
    )
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert fields["TYPE"] == "iso9660"  # cloud-init looks for TYPE=iso9660 or udf
    assert fields["LABEL"].startswith("rd_rdfe_stable.")
    assert len(fields["LABEL"]) == len("rd_rdfe_stable.261208-0336")


def test_the_file_is_found_by_name_in_rock_ridge_and_joliet(iso: Path) -> None:
    assert "ovf-env.xml" in _isoinfo(iso, "-R", "-l")
    assert "ovf-env.xml" in _isoinfo(iso, "-J", "-l")
    assert _isoinfo(iso, "-J", "-x", "/ovf-env.xml") == _isoinfo(iso, "-R", "-x", "/ovf-env.xml")


def test_cloud_init_provisions_from_it(report: dict[str, Any]) -> None:
    seen = report["cloud_init"]
    assert seen["metadata"] == {"local-hostname": "lab-host"}
    assert seen["userdata"] == CUSTOM.decode()
    assert seen["default_user"] == {"name": "ops", "lock_passwd": False}
    assert seen["password_matches"] is True
    assert seen["ssh_pwauth"] is True  # disablePasswordAuthentication: false
    assert seen["preprovisioned"] is False
    plain, certificate = seen["pubkeys"]
    assert plain == {"fingerprint": None, "path": "/home/ops/.ssh/authorized_keys", "value": KEY}
    # A key given as a certificate is named by its thumbprint, fetched from the WireServer.
    assert certificate["value"] == ""
    assert certificate["path"] == "/home/ops/.ssh/authorized_keys"
    der = base64.b64decode("".join(CERT_KEY.splitlines()[1:-1]))
    assert certificate["fingerprint"] == hashlib.sha1(der).hexdigest().upper()
    assert seen["files"] == ["ovf-env.xml"]


def test_waagent_provisions_from_it(report: dict[str, Any]) -> None:
    seen = report["waagent"]
    assert (seen["hostname"], seen["username"]) == ("lab-host", "ops")
    assert seen["user_password"] == PASSWORD
    assert base64.b64decode(seen["customdata"]) == CUSTOM
    assert seen["disable_ssh_password_auth"] is False
    # "true", or waagent disables itself.
    assert seen["provision_guest_agent"] == "true"
    assert seen["ssh_pubkeys"][0] == ["/home/ops/.ssh/authorized_keys", None, KEY]
    path, fingerprint, value = seen["ssh_pubkeys"][1]
    assert (path, value) == ("/home/ops/.ssh/authorized_keys", None)
    assert fingerprint == report["cloud_init"]["pubkeys"][1]["fingerprint"]


@pytest.mark.root
def test_cloud_init_finds_the_media_among_the_block_devices(iso: Path) -> None:
    """Attached read-only as a loop device, as a DVD drive it is one of the devices
    cloud-init's Azure data source tries (by blkid TYPE=iso9660). Mounting it is the
    kernel's isofs, which the guest has; this test stops at the search."""
    if os.geteuid() != 0:
        pytest.fail("this test attaches a loop device and must run as root")
    attach = ["losetup", "--find", "--show", "--read-only", str(iso)]
    device = subprocess.run(attach, capture_output=True, text=True, check=True).stdout.strip()
    net = LoopbackOnlyNetwork()
    try:
        dist = client_path("cloud-init", "cloudinit")
        found = run_probe(net, "ovf_probe.py", dist, ["--devices"])["devices"]
    finally:
        net.close()
        subprocess.run(["losetup", "--detach", device], check=False, capture_output=True)
    assert found[:2] == ["/nonexistent-seed", "/dev/sr0"]
    assert device in found[2:]
