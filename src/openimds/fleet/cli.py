"""`openimds vm ...`: the VM inventory of a running server, through its admin API
(import, add, update, remove, list, show, export). `openimds capture`: record a VM's
metadata answers as a VM file (fleet/capture.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote, urlencode

import click

from openimds.cli.options import JSON_OPTION, AdminTarget, admin_options
from openimds.fleet import vm_file

# A batch of tens of thousands of VMs is validated and written in one go: give it time.
BULK_TIMEOUT = 600.0
FILE = click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"openimds: {message}", err=True)
    sys.exit(code)


def _call(
    admin: AdminTarget,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """One admin API call; on a refusal, its message with `request body` (the server's
    name for what was sent) replaced by `origin`, the file it came from."""
    from openimds.cli.admin_client import AdminError, request

    try:
        return request(admin.config(), method, path, json=body, headers=headers, timeout=timeout)
    except AdminError as exc:
        _fail(str(exc) if origin is None else _in_file_words(str(exc), origin))


def _in_file_words(text: str, origin: str) -> str:
    """The server words a refused body's errors as `request body: field: problem`, one
    a line, as it words a config file's; here the body is the file `origin`."""
    prefix = "request body"
    lines = text.splitlines()
    return "\n".join(
        origin + line[len(prefix) :] if line.startswith(prefix) else line for line in lines
    )


def _read(path: str) -> dict[str, Any]:
    """A VM file's VMs; exit 2 with one line when the file cannot be read or parsed."""
    from openimds.config import ConfigError

    try:
        payload, ignored = vm_file.read_vms(path)
    except ConfigError as exc:
        _fail(str(exc), code=2)
    if ignored:
        click.echo(f"openimds: {path}: settings left out (not VMs): {', '.join(ignored)}", err=True)
    return payload


def _one(path: str, payload: dict[str, Any], command: str) -> str:
    """The name of the file's only VM (add and update take one)."""
    vms = vm_file.vms_in(payload)
    if len(vms) != 1:
        _fail(f"{path}: holds {len(vms)} VMs; `vm {command}` takes one (`vm import` takes many)")
    name = vm_file.name_of(vms[0])
    if not name:
        _fail(f"{path}: a VM needs a name (name or instance.compute.name)")
    return name


def _path(name: str) -> str:
    return "/vms/" + quote(name, safe="")


@click.group("vm")
def vm() -> None:
    """The VM inventory of a running server, changed live (no restart)."""


@vm.command("import")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--prune",
    is_flag=True,
    help="Make the inventory match FILE: the VMs it does not name are removed, in the same "
    "store batch as the rest (all or none).",
)
@admin_options
@JSON_OPTION
def import_vms(path: str, prune: bool, admin: AdminTarget, as_json: bool) -> None:
    """Add or replace the VMs of FILE (`-`: standard input) by name (one VM, or a `vms`
    list; all or none). Importing the same file again changes nothing."""
    payload = _read(path)
    origin = vm_file.label(path)
    listed = _call(admin, "GET", "/vms?view=summary", timeout=BULK_TIMEOUT)["vms"]
    before = {v["name"] for v in listed}
    try:
        target = "/vms" + ("?prune=true" if prune else "")
        answer = _call(admin, "POST", target, payload, origin=origin, timeout=BULK_TIMEOUT)
    except KeyboardInterrupt:
        # The server applies a batch whole or not at all; which one, only it knows.
        _fail(
            "interrupted while the server was importing: the import is all or none, so "
            "either every VM of the file or none was applied; `openimds vm list` shows which",
            130,
        )
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for name in answer["changed"]:
        click.echo(f"{'updated' if name in before else 'added'}  {name}")
    for name in answer["unchanged"]:
        click.echo(f"unchanged  {name}")
    for name in answer.get("removed", []):
        click.echo(f"removed  {name}")


@vm.command("add")
@FILE
@admin_options
@JSON_OPTION
def add(path: str, admin: AdminTarget, as_json: bool) -> None:
    """Add the VM of FILE; refused if a VM of that name exists."""
    _put(path, admin, as_json, "add", {"If-None-Match": "*"})


@vm.command("update")
@FILE
@admin_options
@JSON_OPTION
def update(path: str, admin: AdminTarget, as_json: bool) -> None:
    """Replace the VM of FILE (by its name); refused if no VM of that name exists."""
    _put(path, admin, as_json, "update", {"If-Match": "*"})


def _put(
    path: str, admin: AdminTarget, as_json: bool, command: str, headers: dict[str, str]
) -> None:
    payload = _read(path)
    name = _one(path, payload, command)
    answer = _call(admin, "PUT", _path(name), payload, headers=headers, origin=path)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    elif command == "add":
        click.echo(f"added  {name}")
    else:  # as `vm import` words it
        click.echo(f"{'updated' if answer.get('changed', True) else 'unchanged'}  {name}")


SELECTORS = (
    click.option("--q", "q", help="Case-insensitive search, as GET /vms?q= (name, ids, tags...)."),
    click.option("--tag", "tags", multiple=True, help="KEY or KEY=VALUE; repeatable, all match."),
    click.option("--scale-set", help="Only the VMs of this scale set."),
)


def selectors(command: Any) -> Any:
    for option in reversed(SELECTORS):
        command = option(command)
    return command


def _selection(q: str | None, tags: tuple[str, ...], scale_set: str | None) -> str:
    """The query string of GET /vms for these selectors ("" when none is given)."""
    params = [("q", q or ""), *(("tag", tag) for tag in tags), ("scale_set", scale_set or "")]
    return urlencode([(key, value) for key, value in params if value])


@vm.command("remove")
@click.argument("names", metavar="[NAME]...", nargs=-1)
@selectors
@click.option("--all", "everything", is_flag=True, help="Remove every VM.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing by selector/--all.")
@admin_options
def remove(
    names: tuple[str, ...],
    q: str | None,
    tags: tuple[str, ...],
    scale_set: str | None,
    everything: bool,
    yes: bool,
    admin: AdminTarget,
) -> None:
    """Remove VMs by name, by selector (--q, --tag, --scale-set) or --all, in one store
    batch: all or nothing (nothing is removed if one name is unknown). A selector or
    --all lists what it matches and asks first (--yes does not ask)."""
    query = _selection(q, tags, scale_set)
    if sum((bool(names), bool(query), everything)) != 1:
        _fail("give NAME..., a selector (--q, --tag, --scale-set) or --all (one of them)", 2)
    if not names:
        listed = _call(admin, "GET", f"/vms?view=summary&{query}", timeout=BULK_TIMEOUT)["vms"]
        names = tuple(row["name"] for row in listed)
        if not names:
            click.echo("no VM matches; nothing removed")
            return
        if not yes:
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            shown = ", ".join(names[:10]) + more
            click.confirm(f"remove {len(names)} VM(s): {shown}?", abort=True, err=True)
    body = {"names": list(dict.fromkeys(names))}
    answer = _call(admin, "POST", "/vms/remove", body, timeout=BULK_TIMEOUT)
    for name in answer["removed"]:
        click.echo(f"removed  {name}")


@vm.command("list")
@selectors
@admin_options
@JSON_OPTION
def list_vms(
    q: str | None, tags: tuple[str, ...], scale_set: str | None, admin: AdminTarget, as_json: bool
) -> None:
    """The VMs the server answers for: name, size, location, addresses, revision; only
    those the selectors match (--q, --tag, --scale-set: as GET /vms takes them)."""
    query = _selection(q, tags, scale_set)
    data = _call(admin, "GET", "/vms" + (f"?{query}" if query else ""))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_table(data["vms"]))


def _table(vms: list[dict[str, Any]]) -> str:
    if not vms:
        return "no VMs"
    rows = [("NAME", "SIZE", "LOCATION", "ADDRESSES", "REVISION")]
    for v in vms:
        compute = v.get("instance", {}).get("compute", {})
        addresses = ",".join(v.get("addresses", [])) or "-"
        size, location = compute.get("vmSize") or "-", compute.get("location") or "-"
        rows.append((v["name"], size, location, addresses, str(v["revision"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@vm.command("show")
@click.argument("name")
@admin_options
@JSON_OPTION
def show(name: str, admin: AdminTarget, as_json: bool) -> None:
    """One VM as a VM file holds it (YAML; what `vm update` takes back)."""
    view = _call(admin, "GET", _path(name))
    click.echo(vm_file.dump(vm_file.as_file(view), as_json), nl=False)


@vm.command("export")
@click.option("--name", "names", multiple=True, help="Only this VM (repeatable). Default: all.")
@admin_options
@JSON_OPTION
def export(names: tuple[str, ...], admin: AdminTarget, as_json: bool) -> None:
    """Print a VM file with a `vms` list (YAML, or JSON with --json) that `vm import`
    and the configuration file take."""
    if names:
        views = [_call(admin, "GET", _path(name)) for name in dict.fromkeys(names)]
    else:
        views = _call(admin, "GET", "/vms")["vms"]
    data = {"vms": [vm_file.as_file(view) for view in views]}
    click.echo(vm_file.dump(data, as_json), nl=False)


@click.command("capture")
@click.option(
    "--url",
    default="http://169.254.169.254",
    show_default=True,
    help="The metadata service to record (Azure's, from inside the VM).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the VM file here (JSON if it ends in .json, else YAML). Default: stdout.",
)
@click.option(
    "--client-id",
    "client_ids",
    multiple=True,
    help="Also record this user-assigned identity (repeatable); Azure lists none by itself.",
)
@click.option("--name", default="", help="The VM's name in the file. Default: compute.name.")
@click.option(
    "--address",
    "addresses",
    multiple=True,
    help="A source address the lab VM calls from (repeatable); a fleet needs them.",
)
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds per request.")
def capture(
    url: str,
    output: str | None,
    client_ids: tuple[str, ...],
    name: str,
    addresses: tuple[str, ...],
    timeout: float,
) -> None:
    """Record this VM's metadata answers (instance, userData, load balancer, identity ids;
    never a token) as a VM file that `vm import` takes, so a lab VM can look like it."""
    from openimds.fleet.capture import CaptureFailed, collect
    from openimds.fleet.captured import vm_file as to_vm_file

    def note(text: str) -> None:
        click.echo(f"openimds: capture: {text}", err=True)

    try:
        answers = collect(url, client_ids, timeout, note)
    except CaptureFailed as exc:
        _fail(f"capture from {url} failed: {exc}")
    data, notes = to_vm_file(answers, name, addresses)
    for text in notes:
        note(text)
    as_json = output is not None and output.endswith(".json")
    text = vm_file.dump(data, as_json)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        # userData often carries a bootstrap secret: the file is the owner's alone.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror}")
    ids = data.get("identities", {})
    count = len(ids.get("userAssigned", [])) + ("systemAssigned" in ids)
    noun = "identity" if count == 1 else "identities"
    click.echo(f"captured {data['name']} ({count} {noun}) into {output}", err=True)


COMMANDS: tuple[click.Command, ...] = (vm, capture)
