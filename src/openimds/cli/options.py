"""What every command shares: the --config option, loading the configuration (exit 2 with
one clear message when it is wrong), and calling a running server's admin API (exit 1 with
the reason when that fails)."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


class Seconds(click.ParamType[float]):
    """A flag's number of seconds: finite and not negative, and above zero where zero means
    nothing (a timeout). Refused here, before any call, so NaN or an infinity never reaches
    JSON or a socket."""

    name = "seconds"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number of seconds, got {value!r}", param, ctx)
        if number < 0 or (self.positive and number == 0):
            least = "above 0" if self.positive else "0 or more"
            self.fail(f"expected seconds {least}, got {value!r}", param, ctx)
        return number


SECONDS = Seconds()
"""Seconds where 0 means now or nothing (a delay, a window's start)."""
POSITIVE_SECONDS = Seconds(positive=True)
"""Seconds where 0 means nothing (a timeout)."""

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


def load_or_exit(config_path: str | None, flags: dict[str, Any] | None = None) -> Config:
    try:
        return load_config(config_path, flags=flags)
    except ConfigError as exc:
        click.echo(f"openimds: invalid configuration\n{exc}", err=True)
        sys.exit(2)


@dataclass(frozen=True)
class AdminTarget:
    """Where a command finds the admin API and its token: the configuration file, then
    the environment, then these flags (as for `serve`)."""

    config_path: str | None
    flags: dict[str, Any]

    def config(self) -> Config:
        return load_or_exit(self.config_path, self.flags)


_ADMIN_FLAGS = (
    CONFIG_OPTION,
    click.option(
        "--admin-listen",
        help="The server's admin listener, HOST:PORT or unix:PATH (or OPENIMDS_ADMIN_LISTEN).",
    ),
    click.option("--token", help="The server's admin token (or OPENIMDS_ADMIN_TOKEN)."),
    click.option(
        "--admin-ca",
        help="Speak https; trust this CA bundle (PEM) for the admin listener (or "
        "OPENIMDS_ADMIN_CA).",
    ),
    click.option(
        "--admin-fingerprint",
        help="Speak https; accept only the admin certificate with this SHA-256 fingerprint "
        "(printed at the server's start; or OPENIMDS_ADMIN_FINGERPRINT).",
    ),
    click.option(
        "--state",
        "state_path",
        help="The server's state store, to read a token it generated (or OPENIMDS_STATE).",
    ),
)


def admin_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config, --admin-listen, --token, --admin-ca, --admin-fingerprint and --state for a
    command that talks to a running server; the command receives them as one
    `admin: AdminTarget`."""

    @functools.wraps(command)
    def with_target(
        *args: Any,
        config_path: str | None,
        admin_listen: str | None,
        token: str | None,
        admin_ca: str | None,
        admin_fingerprint: str | None,
        state_path: str | None,
        **kwargs: Any,
    ) -> Any:
        flags = {
            "admin.listen": admin_listen,
            "admin.token": token,
            "admin.tls_ca_file": admin_ca,
            "admin.tls_fingerprint": admin_fingerprint,
            "state.path": state_path,
        }
        return command(*args, admin=AdminTarget(config_path, flags), **kwargs)

    for option in reversed(_ADMIN_FLAGS):
        with_target = option(with_target)
    return with_target


def admin_call(admin: AdminTarget, method: str, path: str, body: Any = None) -> Any:
    """One admin API call on behalf of a command; its decoded JSON answer."""
    from openimds.cli.admin_client import AdminCallFailed, request

    config = admin.config()
    try:
        return request(config, method, path, json=body)
    except AdminCallFailed as exc:
        click.echo(f"openimds: {exc}", err=True)
        sys.exit(1)
