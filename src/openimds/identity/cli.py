"""`openimds keys ...`: list and rotate the managed-identity token signing keys of a
running server, through its admin API (the server keeps them in its state store)."""

from __future__ import annotations

import json
import time

import click

from openimds.cli.options import JSON_OPTION, AdminTarget, admin_call, admin_options


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


COMMANDS = (keys,)
