"""The deploy/ recipes: the Dockerfile read by a real parser, compose.yaml and the
Kubernetes manifests against schema subsets (tests/support/recipe_schemas.py), the systemd
unit by `systemd-analyze verify`."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.support.recipe_schemas import COMPOSE, KUBERNETES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _instructions() -> list[tuple[str, str]]:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    return [(i["instruction"], i["value"]) for i in parser.structure]


def _last(name: str) -> str:
    return [value for instruction, value in _instructions() if instruction == name][-1]


def test_the_dockerfile_runs_a_slim_python_as_a_user_with_a_healthcheck() -> None:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    assert parser.baseimage == "python:3.11-slim"
    user = _last("USER").split(":")[0]
    assert user not in ("root", "0")
    assert _last("EXPOSE") == "80"
    check = _last("HEALTHCHECK")
    assert check.startswith("--interval=") and "http://127.0.0.1:8081/healthz" in check
    assert parser.envs["OPENIMDS_ADMIN_LISTEN"] == "127.0.0.1:8081"  # admin stays inside
    assert parser.envs["OPENIMDS_LISTEN"] == "0.0.0.0:80"
    assert _last("ENTRYPOINT") == '["openimds"]'


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_compose_gives_openimds_azures_address() -> None:
    compose = _yaml(DEPLOY / "compose.yaml")
    jsonschema.validate(compose, COMPOSE, format_checker=jsonschema.FormatChecker())
    imds = compose["services"]["imds"]
    (network,) = imds["networks"]
    address = ipaddress.ip_address(imds["networks"][network]["ipv4_address"])
    assert str(address) == "169.254.169.254"
    (pool,) = compose["networks"][network]["ipam"]["config"]
    assert address in ipaddress.ip_network(pool["subnet"])
    assert address not in ipaddress.ip_network(pool["ip_range"])  # never handed to another
    assert imds["environment"]["OPENIMDS_ADMIN_LISTEN"].startswith("127.0.0.1:")
    assert compose["services"]["app"]["depends_on"]["imds"]["condition"] == "service_healthy"


def _manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            jsonschema.validate(document, KUBERNETES[document["kind"]])
            found[document["kind"]] = document
    return found


def test_kubernetes_runs_two_nodes_on_one_database_from_a_secret() -> None:
    manifests = _manifests()
    assert set(manifests) == {"Deployment", "Service", "Secret"}
    deployment, service, secret = (manifests[k] for k in ("Deployment", "Service", "Secret"))
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    for name, key in (("OPENIMDS_STATE", "state"), ("OPENIMDS_ADMIN_TOKEN", "admin-token")):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (secret["metadata"]["name"], key)
    assert secret["stringData"]["state"].startswith("postgresql://")
    assert "/healthz" in " ".join(container["readinessProbe"]["exec"]["command"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports


@pytest.mark.parametrize("kind", ["Deployment", "Service", "Secret"])
def test_the_kubernetes_schemas_refuse_a_broken_manifest(kind: str) -> None:
    broken = {**_manifests()[kind], "metadata": {"name": "Not_A_Name"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KUBERNETES[kind])


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/install installs systemd"
    unit = (DEPLOY / "openimds.service").read_text()
    # verify checks that ExecStart exists: point it at the openimds this test runs with.
    installed = str(Path(sys.executable).parent / "openimds")
    (tmp_path / "openimds.service").write_text(unit.replace("/usr/local/bin/openimds", installed))
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "openimds.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for line in (
        "DynamicUser=yes",
        "StateDirectory=openimds",
        "StateDirectoryMode=0700",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ):
        assert line in unit.splitlines()
