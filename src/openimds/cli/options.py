"""What every command shares: the --config option, loading the configuration (exit 2 with
one clear message when it is wrong), and calling a running server's admin API (exit 1 with
the reason when that fails)."""

from __future__ import annotations

import sys
from typing import Any

import click

from openimds.config import Config, ConfigError, load_config

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    envvar="OPENIMDS_CONFIG",
    type=click.Path(dir_okay=False),
    help="VM/config file (YAML or JSON); commands that talk to a running server read its "
    "admin address and token from it. Default: the built-in demo VM and settings.",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def load_or_exit(config_path: str | None, flags: dict[str, Any] | None = None) -> Config:
    try:
        return load_config(config_path, flags=flags)
    except ConfigError as exc:
        click.echo(f"openimds: invalid configuration\n{exc}", err=True)
        sys.exit(2)


def admin_call(config_path: str | None, method: str, path: str, body: Any = None) -> Any:
    """One admin API call on behalf of a command; its decoded JSON answer."""
    from openimds.cli.admin_client import AdminError, request

    config = load_or_exit(config_path)
    try:
        return request(config, method, path, json=body)
    except AdminError as exc:
        click.echo(f"openimds: {exc}", err=True)
        sys.exit(1)
