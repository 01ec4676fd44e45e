"""The deploy/ recipes: the Dockerfile read by a real parser, compose.yaml and the
Kubernetes manifests against schema subsets (tests/support/recipe_schemas.py), the systemd
unit by `systemd-analyze verify`."""

from __future__ import annotations

import ipaddress
import shlex
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


# What Debian's useradd --create-home gives a home directory: HOME_MODE is unset in
# bookworm's /etc/login.defs (the image's base), so the mode is 0777 & ~UMASK (022).
_USERADD_HOME_MODE = 0o755


def _final_stage_commands() -> list[list[str]]:
    """Each shell command of the final stage's RUN lines, split as sh would (the
    Dockerfile uses only `&&` between commands)."""
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    commands = []
    for name, value in instructions[last_from:]:
        if name == "RUN":
            commands += [shlex.split(part) for part in value.split("&&")]
    return commands


def _option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words):
        if word in names:
            return words[i + 1]
    return None


def _image_directories() -> dict[str, tuple[int, str]]:
    """What the final stage's commands leave a directory as: path -> (mode, owner uid).
    Each command that makes or changes a directory is modelled; `--create-home` without a
    mode of its own gets Debian's default."""
    made: dict[str, tuple[int, str]] = {}
    uids: dict[str, str] = {}
    for words in _final_stage_commands():
        program, args = words[0], words[1:]
        if program == "useradd":
            uid = _option(args, "--uid", "-u") or "?"
            uids[args[-1]] = uid
            home = _option(args, "--home-dir", "-d")
            if home and ("--create-home" in args or "-m" in args):
                made[home] = (_USERADD_HOME_MODE, uid)
        elif program == "install" and ("-d" in args or "--directory" in args):
            mode = int(_option(args, "-m", "--mode") or "755", 8)
            owner = _option(args, "-o", "--owner") or "0"
            for path in [a for a in args if a.startswith("/")]:
                made[path] = (mode, uids.get(owner, owner))
        elif program == "chmod":
            mode_text, *paths = [a for a in args if not a.startswith("-")]
            for path in paths:
                made[path] = (int(mode_text, 8), made.get(path, (0, "0"))[1])
        elif program == "chown":
            owner_text, *paths = [a for a in args if not a.startswith("-")]
            owner = owner_text.split(":")[0]
            for path in paths:
                made[path] = (made.get(path, (0o755, "0"))[0], uids.get(owner, owner))
    return made


def test_the_images_state_directory_is_private_and_the_servers() -> None:
    state = str(Path(_last_env("OPENIMDS_STATE")).parent)
    assert _last("VOLUME") == f'["{state}"]'  # a new volume starts with the image's mode
    assert _last("WORKDIR") == state
    mode, owner = _image_directories()[state]
    assert (mode, owner) == (0o700, _last("USER").split(":")[0])


def test_serve_accepts_the_images_state_directory_and_refuses_debians_default(
    tmp_path: Path,
) -> None:
    from openimds.store.sqlite import StateNotPrivate, check_location

    state = str(Path(_last_env("OPENIMDS_STATE")).parent)
    folder = tmp_path / "openimds"
    folder.mkdir()
    folder.chmod(_image_directories()[state][0])
    check_location(str(folder / "state.db"))  # the image's: accepted
    folder.chmod(_USERADD_HOME_MODE)
    with pytest.raises(StateNotPrivate, match="chmod 700"):
        check_location(str(folder / "state.db"))


def _last_env(name: str) -> str:
    return str(DockerfileParser(path=str(DEPLOY / "Dockerfile")).envs[name])


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
