"""WALinuxAgent's IMDS client (Debian's waagent 2.7) reads the VM from openimds.

The probe calls the agent's own ImdsClient under Debian's python3 with only its IMDS and
wireserver addresses changed (see probes/waagent_probe.py). Server and agent share a
namespace with nothing but loopback, so the agent's fallback to Azure's wireserver can
never leave the machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.sandbox import CLOSED_LOOPBACK, ClientRun, client_path, serve_and_probe
from tests.support.imds import reference_vm_data

pytestmark = pytest.mark.clients

DEMO = reference_vm_data()["instance"]


def run_agent(tmp: Path, config: str | None = None) -> ClientRun:
    dist = client_path("waagent", "azurelinuxagent")
    return serve_and_probe(
        tmp,
        "waagent_probe.py",
        dist,
        lambda server: [server.metadata_url.removeprefix("http://"), CLOSED_LOOPBACK],
        config=config,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ClientRun:
    """One run of the agent's IMDS calls against the built-in demo VM."""
    return run_agent(tmp_path_factory.mktemp("waagent-demo"))


def test_runs_debian_waagent_2_7_with_no_route_out(demo: ClientRun) -> None:
    assert demo.report["agent_version"].startswith("2.7.")
    assert demo.report["module"].endswith("azurelinuxagent/common/protocol/imds.py")
    isolation = demo.report["isolation"]
    assert isolation["interfaces"] == ["lo"]
    assert "unreachable" in isolation["wireserver"].lower()


def test_agent_sends_metadata_true_with_a_capital_t_and_is_served(demo: ClientRun) -> None:
    headers = demo.report["headers"]
    assert ["Metadata", "True"] in headers
    assert ["User-Agent", "WALinuxAgent/" + demo.report["agent_version"]] in headers
    assert ["User-Agent", "WALinuxAgent/" + demo.report["agent_version"] + "+health"] in headers
    # get_compute() and the raw read hit the compute sub-tree, validate() the document.
    assert demo.served("/metadata/instance/compute") == [200, 200]
    assert demo.served("/metadata/instance") == [200]


def test_get_compute(demo: ClientRun) -> None:
    compute = demo.report["compute"]
    for field in ("vmId", "location", "name", "vmSize", "subscriptionId", "resourceGroupName"):
        assert compute[field] == DEMO["compute"][field]
    assert compute["tags"] == "environment:demo;owner:openimds"
    assert compute["zone"] == "1"
    assert compute["osType"] == "Linux"
    assert (
        demo.report["image_info"]
        == "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.202411010"
    )
    # A marketplace image: endorsed (2) or platform (3), never custom (1) or unknown (0).
    assert demo.report["image_origin"] in (2, 3)


def test_compute_at_2018_02_01_has_only_that_versions_fields(demo: ClientRun) -> None:
    # The agent asks with api-version=2018-02-01: newer fields (plan, publicKeys,
    # storageProfile, ...) must not appear.
    assert demo.report["compute_keys"] == [
        "location",
        "name",
        "offer",
        "osType",
        "placementGroupId",
        "platformFaultDomain",
        "platformUpdateDomain",
        "publisher",
        "resourceGroupName",
        "sku",
        "subscriptionId",
        "tags",
        "version",
        "vmId",
        "vmScaleSetName",
        "vmSize",
        "zone",
    ]


def test_validate_reports_healthy(demo: ClientRun) -> None:
    assert demo.report["healthy"] is True
    assert demo.report["error"] == ""


def test_minimal_vm_file_is_a_custom_image_without_network(tmp_path: Path) -> None:
    config = tmp_path / "vm.yaml"
    config.write_text(
        "vms:\n"
        "  - instance:\n"
        "      compute:\n"
        "        name: tiny\n"
        "        vmId: 5f1a2b3c-0000-4000-8000-000000000001\n"
    )
    run = run_agent(tmp_path, str(config))
    compute = run.report["compute"]
    assert compute["name"] == "tiny"
    assert compute["vmId"] == "5f1a2b3c-0000-4000-8000-000000000001"
    # Fields the file leaves out are Azure's empty strings, so the agent sees a custom
    # image (publisher "") rather than a missing field.
    assert compute["location"] == ""
    assert run.report["image_info"] == ":::"
    assert run.report["image_origin"] == 1
    # No NIC in the file: served as an empty `interface` list, which the health check
    # reports as such (a 200 that fails validation, not a service error).
    assert run.report["healthy"] is False
    assert run.report["error"] == "Empty field: [interface]"
