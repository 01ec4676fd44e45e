"""The configuration: precedence, the VM file format, and messages for bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from openimds.config import (
    ENV_VARS,
    Config,
    ConfigError,
    effective,
    json_schema,
    load_config,
    parse_listen,
)
from tests.support.imds import reference_vm_data

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_FILE = ROOT / "docs" / "config.schema.json"
EXAMPLES = ROOT / "examples"
DEMO_VM = ROOT / "src" / "openimds" / "data" / "demo-vm.json"

FIVE_LINE_VM = """\
instance:
  compute:
    name: tiny
    vmSize: Standard_B1s
    location: westus
"""


@pytest.fixture
def write(tmp_path: Path) -> Iterator[Any]:
    def _write(text: str, name: str = "vm.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    yield _write


def load(path: str | None, **kwargs: Any) -> Config:
    return load_config(path, env=kwargs.pop("env", {}), **kwargs)


def error_of(path: str | None, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path, **kwargs)
    return str(caught.value)


# -- precedence: defaults < file < environment < flags ---------------------------------------
def test_defaults() -> None:
    config = load(None)
    assert config.server.listen == parse_listen("127.0.0.1:8080")
    assert config.server.rate_limit == 5.0
    assert config.admin.listen == parse_listen("127.0.0.1:8081")
    assert config.admin.token is None
    assert [vm.display_name for vm in config.vms] == ["demo-vm"]


def test_file_then_environment_then_flags(write: Any) -> None:
    path = write("server:\n  listen: 127.0.0.1:9000\n  rate_limit: 2\n")
    assert load(path).server.listen == parse_listen("127.0.0.1:9000")
    env = {"OPENIMDS_LISTEN": "127.0.0.1:9001"}
    assert load(path, env=env).server.listen == parse_listen("127.0.0.1:9001")
    flagged = load(path, env=env, flags={"server.listen": "127.0.0.1:9002"})
    assert flagged.server.listen == parse_listen("127.0.0.1:9002")
    assert flagged.server.rate_limit == 2.0  # untouched settings keep the file's value


def test_unset_flags_do_not_override(write: Any) -> None:
    path = write("server:\n  rate_limit: 3\n")
    config = load(path, env={"OPENIMDS_RATE_LIMIT": "4"}, flags={"server.rate_limit": None})
    assert config.server.rate_limit == 4.0


ENV_SAMPLES = {
    "OPENIMDS_LISTEN": ("127.0.0.1:1234", parse_listen("127.0.0.1:1234")),
    "OPENIMDS_RATE_LIMIT": ("7.5", 7.5),
    "OPENIMDS_LOG_LEVEL": ("debug", "debug"),
    "OPENIMDS_ACCESS_LOG": ("false", False),
    "OPENIMDS_ADMIN_LISTEN": (
        "unix:/run/openimds/admin.sock",
        parse_listen("unix:/run/openimds/admin.sock"),
    ),
    "OPENIMDS_STATE": (":memory:", ":memory:"),
}


@pytest.mark.parametrize("var", sorted(ENV_SAMPLES))
def test_each_environment_variable(var: str) -> None:
    raw, expected = ENV_SAMPLES[var]
    node: Any = load(None, env={var: raw})
    for part in ENV_VARS[var].split("."):
        node = getattr(node, part)
    assert node == expected


def test_admin_token_from_environment_is_redacted_in_show() -> None:
    config = load(None, env={"OPENIMDS_ADMIN_TOKEN": "a-long-enough-token-1234"})
    assert config.admin.token is not None
    assert config.admin.token.get_secret_value() == "a-long-enough-token-1234"
    shown = json.dumps(effective(config))
    assert "a-long-enough-token-1234" not in shown
    assert effective(config)["admin"]["token"] == "***"


def test_every_environment_variable_names_a_setting() -> None:
    for var, dotted in ENV_VARS.items():
        assert var.startswith("OPENIMDS_")
        model: Any = Config
        for part in dotted.split("."):
            assert part in model.model_fields, f"{var} -> {dotted}"
            model = model.model_fields[part].annotation
        assert not (isinstance(model, type) and issubclass(model, BaseModel)), dotted


def test_environment_error_names_the_variable() -> None:
    message = error_of(None, env={"OPENIMDS_RATE_LIMIT": "fast"})
    assert message == (
        "environment variable OPENIMDS_RATE_LIMIT: server.rate_limit: expected a number, got 'fast'"
    )


def test_flag_error_names_the_flag() -> None:
    message = error_of(None, flags={"server.listen": "localhost"})
    assert message.startswith("flag --listen: server.listen: expected HOST:PORT")


# -- the file: one VM or a list --------------------------------------------------------------
def test_single_vm_shorthand(write: Any) -> None:
    config = load(write(FIVE_LINE_VM))
    assert len(config.vms) == 1
    assert config.vms[0].instance.compute.vmSize == "Standard_B1s"


def test_vms_list(write: Any) -> None:
    path = write(
        "vms:\n"
        "  - {name: a, addresses: [10.0.0.4], instance: {compute: {vmId: x}}}\n"
        "  - {name: b, addresses: ['fd00::5']}\n"
    )
    config = load(path)
    assert [vm.display_name for vm in config.vms] == ["a", "b"]
    assert [str(a) for a in config.vms[1].addresses] == ["fd00::5"]


def test_settings_only_file_serves_the_demo_vm(write: Any) -> None:
    assert load(write("server:\n  rate_limit: 0\n")).vms[0].display_name == "demo-vm"
    assert load(write("")).vms[0].display_name == "demo-vm"


def test_five_line_vm_gets_azures_empty_defaults(write: Any) -> None:
    assert len(FIVE_LINE_VM.splitlines()) == 5
    compute = load(write(FIVE_LINE_VM)).vms[0].instance.compute
    assert (compute.name, compute.location) == ("tiny", "westus")
    assert compute.vmId == ""
    assert compute.osProfile.adminUsername == ""
    assert compute.storageProfile.osDisk.managedDisk.id == ""
    assert compute.tagsList == []
    vm = load(write(FIVE_LINE_VM)).vms[0]
    dumped = vm.instance.model_dump()
    assert dumped["compute"]["securityProfile"] == {
        "secureBootEnabled": "",
        "virtualTpmEnabled": "",
        "encryptionAtHost": "",
        "securityType": "",
    }
    assert dumped["network"] == {"interface": []}


def test_yaml_scalars_become_azure_strings(write: Any) -> None:
    path = write(
        "instance:\n"
        "  compute:\n"
        "    platformFaultDomain: 0\n"
        "    zone: 2\n"
        "    version: 1.5\n"
        "    priority: null\n"
        "    additionalCapabilities: {hibernationEnabled: false}\n"
        "    osProfile: {disablePasswordAuthentication: true}\n"
        "    storageProfile: {osDisk: {diskSizeGB: 30}}\n"
        "  network:\n"
        "    interface: [{ipv4: {subnet: [{address: 10.0.0.0, prefix: 24}]}}]\n"
    )
    compute = load(path).vms[0].instance.compute
    assert compute.platformFaultDomain == "0"
    assert compute.zone == "2"
    assert compute.version == "1.5"
    assert compute.priority == ""
    assert compute.additionalCapabilities.hibernationEnabled == "false"
    assert compute.osProfile.disablePasswordAuthentication == "true"
    assert compute.storageProfile.osDisk.diskSizeGB == "30"
    subnet = load(path).vms[0].instance.network.interface[0].ipv4.subnet[0]
    assert subnet.prefix == "24"


@pytest.mark.parametrize(
    "mac", ["000D3AF806EC", "000d3af806ec", "00:0D:3A:F8:06:EC", "00-0d-3a-f8-06-ec"]
)
def test_mac_addresses_are_normalised(write: Any, mac: str) -> None:
    path = write(f'instance:\n  network:\n    interface:\n      - macAddress: "{mac}"\n')
    assert load(path).vms[0].instance.network.interface[0].macAddress == "000D3AF806EC"


def test_bad_mac_address(write: Any) -> None:
    path = write('instance:\n  network:\n    interface:\n      - macAddress: "00:0D:3A"\n')
    assert error_of(path) == (
        f"{path}: instance.network.interface[0].macAddress: not a MAC address: '00:0D:3A' "
        "(12 hex digits, e.g. 000D3AF806EC)"
    )


def test_tags_give_tags_list(write: Any) -> None:
    compute = (
        load(write('instance:\n  compute:\n    tags: "a:1;b:x:y;c:"\n')).vms[0].instance.compute
    )
    assert [(t.name, t.value) for t in compute.tagsList] == [("a", "1"), ("b", "x:y"), ("c", "")]


def test_tags_list_gives_tags(write: Any) -> None:
    path = write(
        "instance:\n  compute:\n    tagsList: [{name: a, value: 1}, {name: b, value: x}]\n"
    )
    compute = load(path).vms[0].instance.compute
    assert compute.tags == "a:1;b:x"
    assert compute.tagsList[0].value == "1"


def test_both_tags_forms_are_kept_as_given(write: Any) -> None:
    path = write("instance:\n  compute:\n    tags: a:1\n    tagsList: [{name: a, value: '1'}]\n")
    compute = load(path).vms[0].instance.compute
    assert (compute.tags, len(compute.tagsList)) == ("a:1", 1)


# -- one clear message per bad file ----------------------------------------------------------
def test_unknown_key_in_shorthand_reads_as_written(write: Any) -> None:
    path = write("instance:\n  compute:\n    vmsize: Standard_B1s\n")
    message = error_of(path)
    assert message.startswith(
        f"{path}: instance.compute.vmsize: unknown field 'vmsize' (did you mean 'vmSize'?); "
        "allowed: additionalCapabilities, azEnvironment,"
    )
    assert "vms.0" not in message
    assert "vms[0]" not in message
    assert len(message.splitlines()) == 1


def test_unknown_key_in_a_vms_list(write: Any) -> None:
    path = write("vms:\n  - instance:\n      compute:\n        vmsize: x\n")
    assert error_of(path).startswith(f"{path}: vms[0].instance.compute.vmsize: unknown field")


def test_unknown_top_level_key_suggests_vm_keys_too(write: Any) -> None:
    message = error_of(write("instnace:\n  compute: {}\n"))
    assert "unknown field 'instnace' (did you mean 'instance'?)" in message
    assert "allowed: " in message
    assert "server" in message.split("allowed: ")[1]


@pytest.mark.parametrize(
    ("text", "where", "explanation"),
    [
        ("instance:\n  compute: 5\n", "instance.compute", "expected a mapping of fields, got 5"),
        ("instance: [a]\n", "instance", "expected a mapping of fields, got a list"),
        ("server:\n  rate_limit: fast\n", "server.rate_limit", "expected a number, got 'fast'"),
        ("server:\n  rate_limit: -1\n", "server.rate_limit", "greater than or equal to 0"),
        ("server:\n  access_log: maybe\n", "server.access_log", "expected true or false"),
        (
            "server:\n  log_level: loud\n",
            "server.log_level",
            "expected one of 'debug', 'info', 'warning' or 'error', got 'loud'",
        ),
        ("addresses: [not-an-ip]\n", "addresses[0]", "expected an IPv4 or IPv6 address"),
        ("instance:\n  network:\n    interface: x\n", "instance.network.interface", "a list"),
        (
            "vms:\n  - {name: a}\n  - {name: a}\n",
            "vms",
            "VM names must be unique; repeated: a",
        ),
        (
            "vms:\n  - {name: a}\n  - {name: b}\n",
            "vms",
            "every VM must list the `addresses` it calls from",
        ),
        ("vms: []\n", "vms", "at least 1 item"),
        (
            "instance:\n  compute:\n    customData: abc\n",
            "instance.compute.customData",
            "Azure never serves customData",
        ),
    ],
)
def test_wrong_values(write: Any, text: str, where: str, explanation: str) -> None:
    path = write(text)
    message = error_of(path)
    assert message.startswith(f"{path}: {where}: ")
    assert explanation in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("localhost", "expected HOST:PORT"),
        ("127.0.0.1:http", "expected HOST:PORT"),
        ("127.0.0.1:70000", "expected HOST:PORT"),
        (":8080", "expected HOST:PORT"),
        ("unix:", "a Unix socket needs a path"),
    ],
)
def test_bad_listen_addresses(write: Any, listen: str, problem: str) -> None:
    path = write(f'admin:\n  listen: "{listen}"\n')
    message = error_of(path)
    assert message.startswith(f"{path}: admin.listen: {problem}")


def test_invalid_yaml_gives_line_and_column(write: Any) -> None:
    path = write("server:\n  listen: 127.0.0.1:8080\n  rate_limit: [1\nadmin: {}\n")
    message = error_of(path)
    assert message.startswith(f"{path}:4:")
    assert "not valid YAML or JSON" in message


def test_invalid_json_file(write: Any) -> None:
    path = write('{"instance": {"compute": {"name": "x",}}', "vm.json")
    assert error_of(path).startswith(f"{path}:1:")


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    assert error_of(path) == f"{path}: cannot read: No such file or directory"


def test_top_level_must_be_a_mapping(write: Any) -> None:
    path = write("- a\n- b\n")
    assert error_of(path) == f"{path}: expected a mapping at the top, got list"


def test_vms_and_top_level_vm_keys_together(write: Any) -> None:
    path = write("name: x\ninstance: {}\nvms:\n  - name: y\n")
    assert error_of(path) == (
        f"{path}: give either a `vms` list or one VM's keys (instance, name), not both"
    )


def test_several_problems_one_line_each(write: Any) -> None:
    path = write("server:\n  listen: nowhere\n  rate_limit: x\ninstance:\n  compute: {vmsize: x}\n")
    lines = error_of(path).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_secrets_are_not_echoed(write: Any) -> None:
    path = write("admin:\n  token: hunter2\n")
    message = error_of(path)
    assert "hunter2" not in message
    assert "at least 16 characters" in message
    assert "hunter2" not in error_of(None, env={"OPENIMDS_ADMIN_TOKEN": "hunter2"})


# -- the CLI: exit 2, one message on stderr, never a traceback ---------------------------------
def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
    return subprocess.run(
        [sys.executable, "-m", "openimds", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("instance:\n  compute:\n    vmsize: x\n", "instance.compute.vmsize: unknown field"),
        ("server: {listen: [1\n", "not valid YAML or JSON"),
        ("name: a\nvms: []\n", "give either a `vms` list or one VM's keys (name), not both"),
        ("server:\n  rate_limit: fast\n", "server.rate_limit: expected a number, got 'fast'"),
    ],
)
def test_cli_config_check_bad_file(write: Any, text: str, expected: str) -> None:
    path = write(text, "bad.yaml")
    result = run_cli("config", "check", "--config", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"openimds: invalid configuration\n{path}")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_config_check_missing_file(tmp_path: Path) -> None:
    result = run_cli("config", "check", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml: cannot read: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_config_check_good_file_and_show(write: Any) -> None:
    path = write(FIVE_LINE_VM)
    assert run_cli("config", "check", "--config", path).stdout == "ok: 1 VM(s)\n"
    shown = run_cli(
        "config",
        "show",
        "--format",
        "json",
        "--config",
        path,
        env={"OPENIMDS_RATE_LIMIT": "9", "OPENIMDS_ADMIN_TOKEN": "x" * 20},
    )
    data = json.loads(shown.stdout)
    assert data["server"]["rate_limit"] == 9.0
    assert data["admin"]["token"] == "***"
    assert data["vms"][0]["instance"]["compute"]["name"] == "tiny"
    assert "x" * 20 not in shown.stdout


# -- JSON Schema and the shipped examples -----------------------------------------------------
def shipped_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def test_shipped_schema_is_current() -> None:
    expected = json.dumps(json_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text() == expected, (
        "docs/config.schema.json is stale: run "
        "`.venv/bin/openimds config schema > docs/config.schema.json`"
    )


def test_cli_prints_the_shipped_schema() -> None:
    assert run_cli("config", "schema").stdout == SCHEMA_FILE.read_text()


def validator() -> jsonschema.Draft202012Validator:
    schema = shipped_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    "path", [DEMO_VM, EXAMPLES / "vm.yaml", EXAMPLES / "fleet.yaml"], ids=lambda p: p.name
)
def test_files_validate_against_the_schema(path: Path) -> None:
    errors = list(validator().iter_errors(yaml.safe_load(path.read_text())))
    assert errors == []


@pytest.mark.parametrize(
    "document",
    [
        {"name": "a", "vms": [{"name": "b"}]},  # both forms
        {"instance": {"compute": {"vmsize": "x"}}},  # unknown key
        {"server": {"rate_limit": "fast"}},
        {"vms": "a"},
    ],
)
def test_schema_refuses_what_the_loader_refuses(document: dict[str, Any]) -> None:
    assert not validator().is_valid(document)


def test_schema_accepts_yaml_scalars_and_a_settings_only_file() -> None:
    assert validator().is_valid({"instance": {"compute": {"platformFaultDomain": 0}}})
    assert validator().is_valid({"server": {"rate_limit": 0}})
    assert validator().is_valid({})


def test_examples_load() -> None:
    single = load(str(EXAMPLES / "vm.yaml"))
    assert [vm.display_name for vm in single.vms] == ["web-01"]
    nic = single.vms[0].instance.network.interface[0]
    assert nic.macAddress == "000D3A2B4C5D"
    assert single.vms[0].instance.compute.tagsList[0].name == "role"
    fleet = load(str(EXAMPLES / "fleet.yaml"))
    assert [vm.display_name for vm in fleet.vms] == ["app-01", "db-01"]
    assert all(vm.addresses for vm in fleet.vms)
    assert fleet.vms[1].loadbalancer is not None
    assert fleet.vms[1].loadbalancer.inboundRules[0].frontendPort == 5432


def test_demo_vm_file_is_the_reference_vm() -> None:
    assert json.loads(DEMO_VM.read_text()) == reference_vm_data()


def test_yaml_examples_in_the_docs_load(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    assert len(blocks) >= 3
    for index, block in enumerate(blocks):
        path = tmp_path / f"block{index}.yaml"
        path.write_text(block)
        assert load(str(path)).vms
