"""Assembling the configuration: precedence (defaults < file < environment < flags), one VM
or a list, reading the file, the JSON Schema, the shipped examples."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, SecretStr

from openimds.config import (
    ENV_VARS,
    Config,
    ConfigError,
    effective,
    json_schema,
    load_config,
    parse_listen,
)
from tests.support.config import FIVE_LINE_VM, WriteFile, error_of, load
from tests.support.imds import reference_vm_data
from tests.support.paths import CONFIG_SCHEMA, DEMO_VM, DOCS, EXAMPLES


# -- precedence: defaults < file < environment < flags ---------------------------------------
def test_defaults() -> None:
    config = load(None)
    assert config.server.listen == parse_listen("127.0.0.1:8080")
    assert config.server.rate_limit == 5.0
    assert config.admin.listen == parse_listen("127.0.0.1:8081")
    assert config.admin.token is None
    assert [vm.display_name for vm in config.vms] == ["demo-vm"]


def test_file_then_environment_then_flags(write: WriteFile) -> None:
    path = write("server:\n  listen: 127.0.0.1:9000\n  rate_limit: 2\n")
    assert load(path).server.listen == parse_listen("127.0.0.1:9000")
    env = {"OPENIMDS_LISTEN": "127.0.0.1:9001"}
    assert load(path, env=env).server.listen == parse_listen("127.0.0.1:9001")
    flagged = load(path, env=env, flags={"server.listen": "127.0.0.1:9002"})
    assert flagged.server.listen == parse_listen("127.0.0.1:9002")
    assert flagged.server.rate_limit == 2.0  # untouched settings keep the file's value


def test_unset_flags_do_not_override(write: WriteFile) -> None:
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
    "OPENIMDS_PROXY_SECRET": ("proxy-secret-0123456789", SecretStr("proxy-secret-0123456789")),
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
def test_single_vm_shorthand(write: WriteFile) -> None:
    config = load(write(FIVE_LINE_VM))
    assert len(config.vms) == 1
    assert config.vms[0].instance.compute.vmSize == "Standard_B1s"


def test_vms_list(write: WriteFile) -> None:
    path = write(
        "vms:\n"
        "  - {name: a, addresses: [10.0.0.4],\n"
        "     instance: {compute: {vmId: 0f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910}}}\n"
        "  - {name: b, addresses: ['fd00::5']}\n"
    )
    config = load(path)
    assert [vm.display_name for vm in config.vms] == ["a", "b"]
    assert [str(a) for a in config.vms[1].addresses] == ["fd00::5"]


def test_settings_only_file_serves_the_demo_vm(write: WriteFile) -> None:
    assert load(write("server:\n  rate_limit: 0\n")).vms[0].display_name == "demo-vm"
    assert load(write("")).vms[0].display_name == "demo-vm"


# -- reading the file: one clear message when it cannot be read -----------------------------
def test_invalid_yaml_gives_line_and_column(write: WriteFile) -> None:
    path = write("server:\n  listen: 127.0.0.1:8080\n  rate_limit: [1\nadmin: {}\n")
    message = error_of(path)
    assert message.startswith(f"{path}:4:")
    assert "not valid YAML or JSON" in message


def test_invalid_json_file(write: WriteFile) -> None:
    path = write('{"instance": {"compute": {"name": "x",}}', "vm.json")
    assert error_of(path).startswith(f"{path}:1:")


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    assert error_of(path) == f"{path}: cannot read: No such file or directory"


def test_a_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"server:\n  listen: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"binary\.yaml: not UTF-8 text \(byte 18\)"):
        load_config(str(path), env={})


def test_top_level_must_be_a_mapping(write: WriteFile) -> None:
    path = write("- a\n- b\n")
    assert error_of(path) == f"{path}: expected a mapping at the top, got list"


def test_vms_and_top_level_vm_keys_together(write: WriteFile) -> None:
    path = write("name: x\ninstance: {}\nvms:\n  - name: y\n")
    assert error_of(path) == (
        f"{path}: give either a `vms` list or one VM's keys (instance, name), not both"
    )


# -- JSON Schema and the shipped examples -----------------------------------------------------
def shipped_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(CONFIG_SCHEMA.read_text())
    return loaded


def test_shipped_schema_is_current() -> None:
    expected = json.dumps(json_schema(), indent=2) + "\n"
    assert CONFIG_SCHEMA.read_text() == expected, (
        "docs/config.schema.json is stale: run "
        "`.venv/bin/openimds config schema > docs/config.schema.json`"
    )


@cache
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
    text = (DOCS / "configuration.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    assert len(blocks) >= 3
    for index, block in enumerate(blocks):
        path = tmp_path / f"block{index}.yaml"
        path.write_text(block)
        assert load(str(path)).vms
