"""The command line: `openimds serve`, `config show`, `net up`, and the admin commands."""

from __future__ import annotations

import gc
import json
import sys

import click
import yaml

from openimds import __version__, features
from openimds.cli.options import CONFIG_OPTION, load_or_exit
from openimds.config import Config, ConfigError, effective, json_schema
from openimds.config.hosts_model import SOURCES


class _FeatureCommands(click.Group):
    """The built-in commands plus each feature's groups (`features.ALL`), imported only
    when one is run or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(name for feature in features.ALL for name in feature.commands)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        built_in = super().get_command(ctx, cmd_name)
        if built_in is not None:
            return built_in
        owner = features.command_owner(cmd_name)
        return None if owner is None else owner.command(cmd_name)


@click.group(cls=_FeatureCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="openimds")
def main() -> None:
    """openimds: the Azure Instance Metadata Service, off Azure."""


@main.command()
@CONFIG_OPTION
@click.option("--listen", help="Metadata listener HOST:PORT (default 127.0.0.1:8080).")
@click.option("--admin-listen", help="Admin listener HOST:PORT or unix:PATH.")
@click.option("--rate-limit", type=float, help="Requests/s per VM; 0 turns throttling off.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--state", "state_path", help="State database (SQLite file, or :memory:).")
@click.option("--access-log/--no-access-log", default=None, help="One log line per request.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    type=click.Choice(list(SOURCES)),
    help="Also serve this managed-identity token source (repeatable); see `openimds env`.",
)
def serve(
    config_path: str | None,
    listen: str | None,
    admin_listen: str | None,
    rate_limit: float | None,
    log_level: str | None,
    state_path: str | None,
    access_log: bool | None,
    hosts: tuple[str, ...],
) -> None:
    """Serve the metadata API and the admin API (and any token sources asked for)."""
    # A start builds many long-lived objects (a large inventory: millions); the cyclic
    # collector would rescan them again and again meanwhile, tripling the start-up time.
    # server.run collects once, freezes what the start built and turns it back on.
    gc.disable()
    flags: dict[str, object] = {
        "server.listen": listen,
        "admin.listen": admin_listen,
        "server.rate_limit": rate_limit,
        "server.log_level": log_level,
        "server.access_log": access_log,
        "state.path": state_path,
    }
    # Merged into the file's `hosts:` section: a source's settings there stay.
    flags.update({f"hosts.{name}.enabled": True for name in hosts})
    config = load_or_exit(config_path, flags)
    from openimds import logs, server
    from openimds.runtime import build_runtime
    from openimds.store import CorruptRecord, StoreError

    logs.configure(config.server.log_level)
    _check_start_or_exit(config)
    try:
        runtime = build_runtime(config, features.ALL)
    except CorruptRecord as exc:
        click.echo(f"openimds: state store {config.state.path}: {exc}", err=True)
        sys.exit(2)
    except (StoreError, ConfigError) as exc:
        click.echo(f"openimds: {exc}", err=True)
        sys.exit(2)
    # The runtime keeps what it needs; a large VM file's validated models can go now.
    del config
    server.run(runtime)


@main.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@CONFIG_OPTION
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml")
def config_show(config_path: str | None, fmt: str) -> None:
    """Print the effective configuration (defaults < file < environment), secrets redacted."""
    data = effective(load_or_exit(config_path))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the configuration file."""
    click.echo(json.dumps(json_schema(), indent=2))


@config_group.command("check")
@CONFIG_OPTION
def config_check(config_path: str | None) -> None:
    """Validate a configuration file and everything `serve` reads before it starts (state
    location, scenario, certificate files); exit 0, or print what is wrong and exit 2."""
    config = load_or_exit(config_path)
    _check_start_or_exit(config)
    click.echo(f"ok: {len(config.vms)} VM(s)")


def _check_start_or_exit(config: Config) -> None:
    from openimds.runtime import check_start

    try:
        check_start(config, features.ALL)
    except ConfigError as exc:
        click.echo(f"openimds: {exc}", err=True)
        sys.exit(2)


@main.group("net")
def net_group() -> None:
    """Make 169.254.169.254 reachable on this machine (Linux, root)."""


@net_group.command("up")
def net_up() -> None:
    """Add 169.254.169.254/32 to the loopback interface."""
    _net("up")


@net_group.command("down")
def net_down() -> None:
    """Remove 169.254.169.254/32 from the loopback interface."""
    _net("down")


def _net(action: str) -> None:
    from openimds.netsetup import change

    ok, message = change(action)
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)
