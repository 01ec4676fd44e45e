"""cloud-init's Azure data source (Debian's cloud-init 22.x) provisions from openimds.

The probe calls the data source's own IMDS crawl and conversions under Debian's python3,
with only its IMDS address changed; see probes/cloud_init_probe.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.clients.sandbox import ClientRun, client_path, serve_and_probe
from tests.support.imds import reference_vm_data

pytestmark = pytest.mark.clients

DEMO = reference_vm_data()["instance"]


def crawl(tmp: Path, config: str | None = None, want: str | None = None) -> ClientRun:
    dist = client_path("cloud-init", "cloudinit")
    workdir = tmp / "cloud-init"
    extra = [want] if want else []
    return serve_and_probe(
        tmp,
        "cloud_init_probe.py",
        dist,
        lambda server: [server.metadata_url, str(workdir), *extra],
        config=config,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ClientRun:
    """One crawl of the built-in demo VM, shared by the tests below."""
    return crawl(tmp_path_factory.mktemp("cloud-init-demo"))


def test_runs_debian_cloud_init_22_in_isolation(demo: ClientRun) -> None:
    assert demo.report["cloud_init_version"].startswith("22.")
    assert demo.report["module"].endswith("cloudinit/sources/DataSourceAzure.py")
    assert demo.report["isolation"]["interfaces"] == ["lo"]


def test_boot_crawl_asks_for_2021_08_01_extended_and_gets_it(demo: ClientRun) -> None:
    first = demo.report["requests"][0]
    assert first["url"].endswith("/metadata/instance?api-version=2021-08-01&extended=true")
    assert first["headers"] == {"Metadata": "true"}
    assert first["status"] == 200
    # No fallback to 2019-06-01 was needed: exactly one request per fetch.
    assert len(demo.report["requests"]) == 2
    assert demo.served("/metadata/instance") == [200]


def test_crawl_returns_the_vm(demo: ClientRun) -> None:
    imds: dict[str, Any] = demo.report["imds"]
    compute = imds["compute"]
    assert compute["vmId"] == DEMO["compute"]["vmId"]
    assert compute["osProfile"] == DEMO["compute"]["osProfile"]
    assert compute["publicKeys"] == DEMO["compute"]["publicKeys"]
    assert imds["network"] == DEMO["network"]
    # 2021-08-01 predates these; the server gates them out.
    assert "physicalZone" not in compute
    assert "securityType" not in compute["securityProfile"]


def test_provisioning_values_cloud_init_takes(demo: ClientRun) -> None:
    report = demo.report
    assert report["username"] == "azureuser"
    assert report["hostname"] == "demo-vm"
    assert report["disable_password"] is True
    # Passing cloud-init's OpenSSH-format check is what keeps it from falling back to OVF.
    assert report["ssh_keys"] == [DEMO["compute"]["publicKeys"][0]["keyData"]]
    assert report["userdata"] == '#!/bin/sh\necho "hello from openimds"\n'
    assert report["region"] == "westeurope"
    assert report["availability_zone"] == "0"
    # No `extended.compute.ppsType`: cloud-init must not start pre-provisioning flows.
    assert report["pps_type"] == "None"
    assert report["network_valid"] is True


def test_network_subtree_for_the_primary_nic_check(demo: ClientRun) -> None:
    second = demo.report["requests"][1]
    assert second["url"].endswith("/metadata/instance/network?api-version=2021-08-01")
    assert second["status"] == 200
    assert demo.report["network_subtree"] == DEMO["network"]
    assert demo.served("/metadata/instance/network") == [200]


def test_network_config_from_imds(demo: ClientRun) -> None:
    assert demo.report["network_config"] == {
        "version": 2,
        "ethernets": {
            "eth0": {
                "dhcp4": True,
                "dhcp4-overrides": {"route-metric": 100},
                "dhcp6": False,
                "match": {"macaddress": "60:45:bd:a5:b2:c1"},
                "set-name": "eth0",
            }
        },
    }


def test_falls_back_to_2019_06_01_when_the_version_is_refused(tmp_path: Path) -> None:
    # openimds knows 2021-08-01, so the refusal is provoked the way a newer client meets
    # an older IMDS: cloud-init asks first for a version this server does not know.
    run = crawl(tmp_path, want="2099-01-01")
    urls = [(r["url"].split("/metadata/")[1], r["status"]) for r in run.report["requests"]]
    assert urls == [
        ("instance?api-version=2099-01-01&extended=true", 400),
        ("instance?api-version=2019-06-01", 200),
        ("instance/network?api-version=2099-01-01", 400),
        ("instance/network?api-version=2019-06-01", 200),
    ]
    assert run.served("/metadata/instance") == [400, 200]
    compute = run.report["imds"]["compute"]
    assert compute["vmId"] == DEMO["compute"]["vmId"]
    # 2019-06-01 predates osProfile (2020-07-15) and userData (2021-01-01): cloud-init
    # gets no user name or hostname from IMDS then, exactly as on an older Azure IMDS.
    assert "osProfile" not in compute
    assert "userData" not in compute
    assert run.report["username"] is None
    assert run.report["hostname"] is None
    assert run.report["ssh_keys"] == [DEMO["compute"]["publicKeys"][0]["keyData"]]
    assert run.report["network_config"]["ethernets"]["eth0"]["match"] == {
        "macaddress": "60:45:bd:a5:b2:c1"
    }


MULTI_NIC_VM = {
    "vms": [
        {
            "name": "multi-nic",
            "instance": {
                "compute": {
                    "name": "multi-nic",
                    "osProfile": {"adminUsername": "ops", "computerName": "multi-nic"},
                },
                "network": {
                    "interface": [
                        {
                            "macAddress": "000D3AF806EC",
                            "ipv4": {
                                "ipAddress": [
                                    {"privateIpAddress": "10.1.0.4", "publicIpAddress": ""},
                                    {"privateIpAddress": "10.1.0.5", "publicIpAddress": ""},
                                ],
                                "subnet": [{"address": "10.1.0.0", "prefix": "22"}],
                            },
                            # Azure's ipv6 object has no `subnet`; cloud-init 22.x
                            # reads one for a second IPv6 address, so keep to one.
                            "ipv6": {"ipAddress": [{"privateIpAddress": "fd00::4"}]},
                        },
                        {
                            # Written with colons and in lower case; served as Azure does.
                            "macAddress": "00:0d:3a:f8:06:ed",
                            "ipv4": {
                                "ipAddress": [{"privateIpAddress": "10.2.0.4"}],
                                "subnet": [{"address": "10.2.0.0", "prefix": "24"}],
                            },
                        },
                    ]
                },
            },
        }
    ]
}


def test_secondary_addresses_and_second_nic(tmp_path: Path) -> None:
    config = tmp_path / "vm.json"
    config.write_text(json.dumps(MULTI_NIC_VM))
    run = crawl(tmp_path, str(config))
    report = run.report
    assert report["username"] == "ops"
    assert report["hostname"] == "multi-nic"
    # No publicKeys in the file: served as [], which cloud-init reads as "no keys".
    assert report["ssh_keys"] == []
    assert report["network_config"]["ethernets"] == {
        "eth0": {
            "dhcp4": True,
            "dhcp4-overrides": {"route-metric": 100},
            "dhcp6": True,
            "dhcp6-overrides": {"route-metric": 100},
            # The first address of each family comes from DHCP, the rest are static
            # with the prefix of the first subnet; an IPv6 address turns DHCPv6 on.
            "addresses": ["10.1.0.5/22"],
            "match": {"macaddress": "00:0d:3a:f8:06:ec"},
            "set-name": "eth0",
        },
        "eth1": {
            "dhcp4": True,
            "dhcp4-overrides": {"route-metric": 200},
            "dhcp6": False,
            "match": {"macaddress": "00:0d:3a:f8:06:ed"},
            "set-name": "eth1",
        },
    }
