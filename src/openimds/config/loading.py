"""How the configuration is assembled: file < environment (OPENIMDS_*) < flags.

A bad value anywhere becomes one ConfigError naming where it came from (file, variable or
flag), the field path and what is allowed; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from openimds.config.errors import ConfigError
from openimds.config.model import Config
from openimds.config.report import Sources, file_schema, format_errors
from openimds.config.vm_model import VmSpec

ENV_PREFIX = "OPENIMDS_"
# Environment variables and the settings they set.
ENV_VARS: dict[str, str] = {
    "OPENIMDS_LISTEN": "server.listen",
    "OPENIMDS_RATE_LIMIT": "server.rate_limit",
    "OPENIMDS_LOG_LEVEL": "server.log_level",
    "OPENIMDS_ACCESS_LOG": "server.access_log",
    "OPENIMDS_ADMIN_LISTEN": "admin.listen",
    "OPENIMDS_ADMIN_TOKEN": "admin.token",
    "OPENIMDS_ADMIN_LOGIN_FAILURES": "admin.login_failures",
    "OPENIMDS_ADMIN_TLS": "admin.tls",
    "OPENIMDS_ADMIN_CA": "admin.tls_ca_file",
    "OPENIMDS_ADMIN_FINGERPRINT": "admin.tls_fingerprint",
    "OPENIMDS_STATE": "state.path",
    "OPENIMDS_IDENTITY_ISSUER": "identity.issuer",
    "OPENIMDS_IDENTITY_RATE_LIMIT": "identity.rate_limit",
    "OPENIMDS_IDENTITY_TOKEN_LIFETIME": "identity.token_lifetime",
    "OPENIMDS_PROXY_SECRET": "proxy.secret",
    "OPENIMDS_JOURNAL_SIZE": "journal.size",
    "OPENIMDS_BOOT_SECONDS": "faults.boot_seconds",
    "OPENIMDS_WIRESERVER_LISTEN": "guest.wireserver.listen",
    "OPENIMDS_HOSTGAPLUGIN_LISTEN": "guest.hostgaplugin.listen",
}

# Command-line flags and the settings they set (`serve` and the admin commands), so an
# error names the flag as it was typed.
FLAGS: dict[str, str] = {
    "server.listen": "--listen",
    "server.rate_limit": "--rate-limit",
    "server.log_level": "--log-level",
    "server.access_log": "--access-log",
    "admin.listen": "--admin-listen",
    "admin.token": "--token",
    "admin.tls": "--admin-tls",
    "admin.tls_ca_file": "--admin-ca",
    "admin.tls_fingerprint": "--admin-fingerprint",
    "state.path": "--state",
    "guest.wireserver.listen": "--wireserver-listen",
    "guest.hostgaplugin.listen": "--hostgaplugin-listen",
}

# A configuration file larger than this is refused unread: a VM file is kilobytes, and
# parsing tens of megabytes would stall the start for many seconds without a word.
MAX_FILE_BYTES = 16 * 1024 * 1024
# libyaml's loader where PyYAML was built with it: an order of magnitude faster.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Keys of one VM, which a single-VM file may give at the top instead of a `vms` list.
VM_KEYS = frozenset(VmSpec.model_fields)


def demo_vm() -> dict[str, Any]:
    text = resources.files("openimds").joinpath("data/demo-vm.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def read_document(path: str) -> Any:
    """A YAML or JSON file (JSON is YAML), parsed; a ConfigError in one line
    (`file:line:col: ...`) when it cannot be read or parsed. The configuration and
    scenario files are read here."""
    # `-` is standard input (`vm import -`), named so in messages.
    source: str | int = sys.stdin.fileno() if path == "-" else path
    path = "stdin" if path == "-" else path
    try:
        with open(source, "rb", closefd=not isinstance(source, int)) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise _too_large(path, size)
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(raw) > MAX_FILE_BYTES:  # grew while being read, or not a regular file
        raise _too_large(path, len(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    if path.endswith(".json"):
        return _parse_json(text, path)
    if text.lstrip().startswith("{"):
        # Most likely JSON, parsed many times faster by json; a YAML flow mapping
        # (`{name: a}`) starts the same way and falls through to YAML.
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            pass
    return _parse_yaml(text, path)


def _too_large(path: str, size: int) -> ConfigError:
    limit = MAX_FILE_BYTES // 2**20
    return ConfigError(f"{path}: too large ({size} bytes; the limit is {limit} MiB)")


def _parse_json(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON: nested too deeply") from None


def _parse_yaml(text: str, path: str) -> Any:
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML or JSON: {problem}") from exc


def read_file(path: str) -> dict[str, Any]:
    """The configuration file, as a mapping."""
    data = read_document(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def normalise(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """A file with one VM may leave out the `vms` list: its VM keys sit at the top."""
    top_vm = {k: v for k, v in data.items() if k in VM_KEYS}
    rest = {k: v for k, v in data.items() if k not in VM_KEYS}
    if top_vm and "vms" in rest:
        keys = ", ".join(sorted(top_vm))
        raise ConfigError(f"{origin}: give either a `vms` list or one VM's keys ({keys}), not both")
    if top_vm:
        rest["vms"] = [top_vm]
    return rest


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def load_config(
    path: str | None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Assemble and validate the effective configuration; `flags` maps settings to the
    values command-line flags gave (None: not given)."""
    env = os.environ if env is None else env
    raw = read_file(path) if path else {}
    sources = Sources(file=path, shorthand="vms" not in raw and bool(set(raw) & VM_KEYS))
    data = normalise(raw, path) if path else {}
    data.setdefault("vms", [demo_vm()])
    for var, dotted in ENV_VARS.items():
        if var in env:
            _set(data, dotted, env[var])
            sources.overrides[dotted] = f"environment variable {var}"
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set(data, dotted, value)
            sources.overrides[dotted] = _flag_name(dotted)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, sources, Config)) from None


def _flag_name(dotted: str) -> str:
    """The flag that set a dotted setting, for error messages."""
    parts = dotted.split(".")
    if parts[0] == "hosts" and len(parts) == 3 and parts[2] == "enabled":
        return f"flag --host {parts[1]}"
    return f"flag {FLAGS.get(dotted, '--' + parts[-1].replace('_', '-'))}"


def effective(config: Config) -> dict[str, Any]:
    """The configuration as `config show` prints it: plain data, secrets redacted."""
    dumped: dict[str, Any] = config.model_dump(mode="json", exclude_none=True)
    if config.admin.token is not None:
        dumped["admin"]["token"] = "***"
    if config.proxy.secret is not None:
        dumped["proxy"]["secret"] = "***"
    return dumped


def json_schema() -> dict[str, Any]:
    """JSON Schema of the configuration file (shipped as docs/config.schema.json)."""
    return file_schema(Config, VmSpec)
