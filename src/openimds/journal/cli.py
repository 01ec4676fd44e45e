"""`openimds requests [--vm NAME] [--follow]`: what VMs asked the metadata listener,
from a running server's request journal."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import click

from openimds.cli.options import AdminTarget, admin_call, admin_options

POLL_SECONDS = 0.5
MAX_BACKOFF = 8.0  # the longest wait between tries while the server is away


def line(entry: dict[str, Any]) -> str:
    at = datetime.fromtimestamp(entry["at"], UTC).strftime("%H:%M:%S.%f")[:-3]
    query = urlencode(entry["query"])
    target = entry["path"] + (f"?{query}" if query else "")
    metadata = entry["headers"].get("Metadata") or entry["headers"].get("metadata")
    notes = [f"Metadata: {metadata}" if metadata is not None else "no Metadata header"]
    if "fault" in entry:
        notes.append(f"fault {entry['fault']}")
    status = entry["status"] or "---"
    return f"{at}  {entry['vm'] or '-'}  {status}  {entry['method']} {target}  ({'; '.join(notes)})"


@click.command("requests")
@click.option("--vm", help="Only this VM's requests.")
@click.option("--limit", type=int, default=50, show_default=True, help="How many to show.")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new requests until Ctrl-C; when the server goes away (a restart), "
    "say so on stderr and reconnect, as tail -F does.",
)
@admin_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print each request as one JSON object per line (JSON Lines: an entry as GET "
    "/requests gives it), so --follow can stream them.",
)
def requests(admin: AdminTarget, as_json: bool, vm: str | None, limit: int, follow: bool) -> None:
    """The last requests the metadata listener received (secrets redacted)."""
    base: dict[str, str] = {} if vm is None else {"vm": vm}
    answer = admin_call(admin, "GET", "/requests?" + urlencode({**base, "limit": limit}))
    _show(answer["requests"], as_json)
    if follow:
        _follow(admin, base, answer["last"], as_json)


def _follow(admin: AdminTarget, base: dict[str, str], last: int, as_json: bool) -> None:
    """Poll for requests after `last`, forever. A server that stops answering is waited
    for with backoff; one that came back with a younger journal (a restart: sequence
    numbers start again at 0) is read from its start."""
    from openimds.cli.admin_client import AdminCallFailed, Unreachable, request

    config = admin.config()
    delay = POLL_SECONDS
    lost = False
    while True:
        time.sleep(delay)
        try:
            answer = request(config, "GET", "/requests?" + urlencode({**base, "after": last}))
            if answer["last"] < last:
                answer = request(config, "GET", "/requests?" + urlencode({**base, "after": 0}))
        except Unreachable as exc:
            if not lost:
                click.echo(f"openimds: {exc}; reconnecting (Ctrl-C stops)", err=True)
            lost = True
            delay = min(delay * 2, MAX_BACKOFF)
            continue
        except AdminCallFailed as exc:
            click.echo(f"openimds: {exc}", err=True)
            sys.exit(1)
        if lost:
            click.echo(f"openimds: reconnected to the admin API at {config.admin.listen}", err=True)
            lost = False
        delay = POLL_SECONDS
        _show(answer["requests"], as_json)
        last = answer["last"]


def _show(entries: list[dict[str, Any]], as_json: bool) -> None:
    for entry in entries:
        click.echo(json.dumps(entry) if as_json else line(entry))


COMMANDS = (requests,)
