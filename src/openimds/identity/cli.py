"""`openimds keys ...`: list and rotate the managed-identity token signing keys of a
running server, through its admin API (the server keeps them in its state store).
`openimds env`: the environment that points the SDKs at one of its token sources."""

from __future__ import annotations

import json
import sys
import time

import click

from openimds.cli.options import JSON_OPTION, AdminTarget, admin_call, admin_options
from openimds.identity.env_vars import (
    CHOICES,
    SHELLS,
    Choice,
    NotServed,
    Shell,
    render,
    variables,
)


def _when(epoch: int | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


@click.group("keys")
def keys() -> None:
    """Token signing keys (managed identities)."""


@keys.command("list")
@admin_options
@JSON_OPTION
def list_keys(admin: AdminTarget, as_json: bool) -> None:
    """Show every published signing key: the active one and retired ones still in the JWKS."""
    data = admin_call(admin, "GET", "/identity/keys")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [("KID", "STATE", "CREATED", "REMOVED AFTER")]
    for key in data["keys"]:
        state = "active" if key["active"] else "retired"
        rows.append((key["kid"], state, _when(key["created"]), _when(key["removeAfter"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@keys.command("rotate")
@admin_options
@JSON_OPTION
def rotate(admin: AdminTarget, as_json: bool) -> None:
    """Create a new signing key and make it active. Tokens signed with the previous key
    stay valid (its public key stays in the JWKS) until they expire."""
    data = admin_call(admin, "POST", "/identity/keys/rotate")
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"active key: {data['kid']} (previous: {data['previous']}, still published)")


@click.command("env")
@admin_options
@click.option(
    "--host",
    "choice",
    type=click.Choice(list(CHOICES)),
    default="vm",
    show_default=True,
    help="The token source azure-identity and msal should use.",
)
@click.option("--shell", type=click.Choice(list(SHELLS)), default="bash", show_default=True)
def env(admin: AdminTarget, choice: Choice, shell: Shell) -> None:
    """Print the variables that make azure-identity and msal use one token source of the
    running server (e.g. `eval "$(openimds env --host arc)"`). The output holds that
    source's secret: treat it like a password."""
    data = admin_call(admin, "GET", "/identity/hosts")
    try:
        values = variables(choice, data["hosts"])
    except NotServed as exc:
        click.echo(
            f"openimds: the server does not serve {exc}: start it with --host {exc} "
            f"or add `{exc}:` under `hosts:` in its config",
            err=True,
        )
        sys.exit(1)
    click.echo(render(values, shell), nl=False)


COMMANDS = (keys, env)
