"""`openimds vm ...`: the VM inventory of a running server, through its admin API
(import, add, update, remove, list, show, export). `openimds capture`: record a VM's
metadata answers as a VM file (fleet/capture.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote

import click

from openimds.cli.options import JSON_OPTION, AdminTarget, admin_options
from openimds.fleet import vm_file

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
) -> Any:
    """One admin API call; on a refusal, its message with `request body` (the server's
    name for what was sent) replaced by `origin`, the file it came from."""
    from openimds.cli.admin_client import AdminError, request

    try:
        return request(admin.config(), method, path, json=body, headers=headers)
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
@FILE
@admin_options
@JSON_OPTION
def import_vms(path: str, admin: AdminTarget, as_json: bool) -> None:
    """Add or replace the VMs of FILE by name (one VM, or a `vms` list; all or none).
    Importing the same file again changes nothing."""
    payload = _read(path)
    before = {v["name"] for v in _call(admin, "GET", "/vms")["vms"]}
    answer = _call(admin, "POST", "/vms", payload, origin=path)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for name in answer["changed"]:
        click.echo(f"{'updated' if name in before else 'added'}  {name}")
    for name in answer["unchanged"]:
        click.echo(f"unchanged  {name}")


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


@vm.command("remove")
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@admin_options
def remove(names: tuple[str, ...], admin: AdminTarget) -> None:
    """Remove VMs by name. Nothing is removed if one of them is unknown."""
    known = {v["name"] for v in _call(admin, "GET", "/vms")["vms"]}
    unknown = [name for name in names if name not in known]
    if unknown:
        _fail(f"no VM named {', '.join(unknown)}; nothing removed")
    for name in dict.fromkeys(names):
        _call(admin, "DELETE", _path(name))
        click.echo(f"removed  {name}")


@vm.command("list")
@admin_options
@JSON_OPTION
def list_vms(admin: AdminTarget, as_json: bool) -> None:
    """The VMs the server answers for: name, size, location, addresses, revision."""
    data = _call(admin, "GET", "/vms")
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
