"""`openimds requests [--vm NAME] [--follow]`: what VMs asked the metadata listener,
from a running server's request journal."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import click

from openimds.cli.options import JSON_OPTION, AdminTarget, admin_call, admin_options

POLL_SECONDS = 0.5


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
@click.option("--follow", "-f", is_flag=True, help="Keep printing new requests (Ctrl-C stops).")
@admin_options
@JSON_OPTION
def requests(admin: AdminTarget, as_json: bool, vm: str | None, limit: int, follow: bool) -> None:
    """The last requests the metadata listener received (secrets redacted)."""
    base: dict[str, str] = {} if vm is None else {"vm": vm}
    answer = admin_call(admin, "GET", "/requests?" + urlencode({**base, "limit": limit}))
    _show(answer["requests"], as_json)
    last = answer["last"]
    while follow:
        time.sleep(POLL_SECONDS)
        answer = admin_call(admin, "GET", "/requests?" + urlencode({**base, "after": last}))
        _show(answer["requests"], as_json)
        last = answer["last"]


def _show(entries: list[dict[str, Any]], as_json: bool) -> None:
    for entry in entries:
        click.echo(json.dumps(entry) if as_json else line(entry))


COMMANDS = (requests,)
