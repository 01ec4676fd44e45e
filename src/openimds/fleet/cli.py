"""`openimds vm ...`: the VM inventory of a running server, through its admin API
(import, add, update, remove, list, show, export), and what a hypervisor needs to boot
a guest as one of them (media, kit: openimds.guest). `openimds capture`: record a VM's
metadata answers as a VM file (fleet/capture.py)."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import quote, urlencode

import click

from openimds.cli.options import JSON_OPTION, POSITIVE_SECONDS, AdminTarget, admin_options
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
    from openimds.cli.admin_client import AdminCallFailed, request

    try:
        return request(admin.config(), method, path, json=body, headers=headers, timeout=timeout)
    except AdminCallFailed as exc:
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
    """One VM as a VM file holds it (YAML; what `vm update` takes back), then its
    provisioning state as comments (docs/guests.md)."""
    view = _call(admin, "GET", _path(name))
    click.echo(vm_file.dump(vm_file.as_file(view), as_json), nl=False)
    if not as_json:
        click.echo(_guest_comment(_call(admin, "GET", _path(name) + "/guest")), nl=False)


def _guest_comment(guest: Mapping[str, Any]) -> str:
    """The provisioning state as YAML comments: the file stays one `vm update` takes."""
    lines = [f"guest: {guest.get('summary', '')}"]
    health = guest.get("health")
    if health:
        lines.append(f"  health: {health['state']} at {health.get('at')}")
        for key in ("substatus", "description"):
            if health.get(key):
                lines.append(f"    {key}: {health[key]}")
    agent = guest.get("agent")
    if agent:
        message = f" ({agent['message']})" if agent.get("message") else ""
        lines.append(f"  agent: {agent.get('agent_version')} {agent.get('status')}{message}")
    if guest.get("incarnation"):
        lines.append(f"  incarnation: {guest['incarnation']}")
    if guest.get("goal_state_fetched_at"):
        lines.append(f"  goal state fetched: {guest['goal_state_fetched_at']}")
    return "".join(f"# {line}\n" for line in lines)


@vm.command("wait")
@click.argument("name")
@click.option("--ready", is_flag=True, required=True, help="Wait until the VM reports Ready.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds to wait before giving up (exit 1).",
)
@admin_options
def wait(name: str, ready: bool, timeout: float, admin: AdminTarget) -> None:
    """Wait until the VM's agent reports Ready to the WireServer (what an image pipeline
    or a CI job calls after booting a VM). Exit 0 once Ready, 1 on timeout, 2 when no
    VM has the name (the caller's mistake, as every vm command says it)."""
    import time

    _view(admin, name)
    deadline = time.monotonic() + timeout
    while True:
        guest = _call(admin, "GET", _path(name) + "/guest")
        health = guest.get("health") or {}
        if health.get("state") == "Ready":
            click.echo(f"{name}: {guest.get('summary')}")
            return
        left = deadline - time.monotonic()
        if left <= 0:
            _fail(f"{name} did not report Ready within {timeout:g} s ({guest.get('summary')})")
        time.sleep(min(0.5, left))


@vm.command("export")
@click.option("--name", "names", multiple=True, help="Only this VM (repeatable). Default: all.")
@admin_options
@JSON_OPTION
def export(names: tuple[str, ...], admin: AdminTarget, as_json: bool) -> None:
    """Print a VM file with a `vms` list (YAML, or JSON with --json) that `vm import`
    and the configuration file take. Identities and vmIds carry the ids the server uses,
    generated ones included, so a VM imported elsewhere keeps its vmId and its tokens'
    tid, oid and appid."""
    if names:
        views = [_call(admin, "GET", _path(name)) for name in dict.fromkeys(names)]
    else:
        views = _call(admin, "GET", "/vms")["vms"]
    effective = {vm["name"]: vm["identities"] for vm in _call(admin, "GET", "/identity/vms")["vms"]}
    served = {row["name"]: row["vmId"] for row in _call(admin, "GET", "/vms?view=summary")["vms"]}
    data = {
        "vms": [
            vm_file.as_file(view, effective.get(view["name"]), served.get(view["name"]))
            for view in views
        ]
    }
    click.echo(vm_file.dump(data, as_json), nl=False)


def _view(admin: AdminTarget, name: str) -> dict[str, Any]:
    """The VM as the admin API shows it; an unknown name is the user's mistake (exit 2)."""
    from openimds.cli.admin_client import AdminCallFailed, request

    try:
        view: dict[str, Any] = request(admin.config(), "GET", _path(name))
    except AdminCallFailed as exc:
        if exc.status == 404:
            _fail(f"no VM named {name}", 2)
        _fail(str(exc))  # the server's or the connection's failure, as every vm command
    return view


def _read_bytes(path: str | None, flag: str) -> bytes:
    if path is None:
        return b""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        _fail(f"{flag} {path}: cannot read: {exc.strerror}", 2)


@vm.command("media")
@click.argument("name")
# Paths are plain text: a directory or a missing file is refused by the command in one
# line, as an unwritable path is, not by click's usage screen.
@click.option(
    "-o",
    "--output",
    help="Write the ISO here (readable by its owner only). Default: NAME.iso.",
)
@click.option(
    "--custom-data",
    "custom_data",
    help="A file whose bytes are the VM's custom data (Azure's osProfile.customData; "
    "IMDS never serves it). Put in the media base64-encoded.",
)
@click.option(
    "--admin-password-file",
    help="A file holding the admin user's password (first line); default: none (SSH keys).",
)
@click.option(
    "--admin-username", default="", help="The admin user. Default: osProfile.adminUsername."
)
@click.option(
    "--ssh-key",
    "ssh_keys",
    multiple=True,
    help="Also install this OpenSSH public key file (repeatable), beside compute.publicKeys.",
)
@admin_options
def media(
    name: str,
    output: str | None,
    custom_data: str | None,
    admin_password_file: str | None,
    admin_username: str,
    ssh_keys: tuple[str, ...],
    admin: AdminTarget,
) -> None:
    """Write the provisioning ISO Azure attaches to VM NAME: ovf-env.xml from its
    osProfile and publicKeys, labelled rd_rdfe_stable.*, as cloud-init and waagent read
    it from the guest's /dev/sr0 (docs/guests.md)."""
    from datetime import UTC, datetime

    from openimds.core.guest import ovf
    from openimds.guest import media as iso

    view = _view(admin, name)
    password = _read_bytes(admin_password_file, "--admin-password-file").decode("utf-8", "replace")
    keys = tuple(
        _read_bytes(path, "--ssh-key").decode("utf-8", "replace").strip() for path in ssh_keys
    )
    try:
        provisioning = ovf.from_instance(
            view.get("instance") or {},
            username=admin_username,
            extra_keys=keys,
            password=password.splitlines()[0] if password else "",
            custom_data=_read_bytes(custom_data, "--custom-data"),
        )
    except ovf.NotProvisionable as exc:
        _fail(f"VM {name}: {exc}", 2)
    image = iso.iso(ovf.ovf_env(provisioning), iso.label(datetime.now(UTC)))
    path = output or f"{name}.iso"
    try:
        iso.write(path, image)
    except OSError as exc:
        _fail(f"{path}: cannot write: {exc.strerror}", 2)
    click.echo(f"wrote {path} (provisioning media of {name}, {len(image)} bytes)", err=True)


@vm.command("kit")
@click.argument("name")
@click.option("--qemu", is_flag=True, help="QEMU options and dnsmasq options.")
@click.option("--libvirt", is_flag=True, help="A libvirt domain's parts.")
@click.option(
    "--media",
    "media_path",
    default="",
    help="The provisioning ISO (`vm media`). Default: NAME.iso (absolute for --libvirt).",
)
@click.option(
    "--uefi",
    is_flag=True,
    help="A UEFI (Azure generation 2) guest; default BIOS (generation 1), whose SMBIOS "
    "UUID Azure stores byte-swapped.",
)
@click.option("--tap", default="tap0", show_default=True, help="QEMU: the NIC's tap device.")
@click.option(
    "--bridge", default="br0", show_default=True, help="libvirt: the bridge the NIC joins."
)
@admin_options
def kit(
    name: str,
    qemu: bool,
    libvirt: bool,
    media_path: str,
    uefi: bool,
    tap: str,
    bridge: str,
    admin: AdminTarget,
) -> None:
    """Print what a hypervisor and dnsmasq must set so a guest looks like VM NAME: Azure's
    chassis asset tag, Hyper-V's SMBIOS strings and no CPUID hypervisor bit (so systemd
    says `microsoft`), the system UUID of its vmId, its NIC's MAC, the media, and DHCP
    options 245 (WireServer) and 121 (routes)."""
    from openimds.guest import kit as kits

    if qemu == libvirt:  # neither, or both: each prints a different thing
        _fail("vm kit: give --qemu or --libvirt" + (", not both" if qemu else ""), 2)
    target = "qemu" if qemu else "libvirt"
    view = _view(admin, name)
    try:
        guest = kits.guest(view, uefi)
    except kits.NoKit as exc:
        _fail(str(exc), 2)
    path = media_path or f"{name}.iso"
    if target == "qemu":
        click.echo(kits.qemu(guest, path, tap), nl=False)
    else:
        click.echo(kits.libvirt(guest, os.path.abspath(path), bridge), nl=False)


def _addresses(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Each --address checked as `vm import` checks it, before anything is asked: the
    captured file is always importable."""
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise click.BadParameter(
                f"expected an IPv4 or IPv6 address, got {value!r}", ctx, param
            ) from None
    return values


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
    callback=_addresses,
    help="A source address the lab VM calls from (repeatable); a fleet needs them.",
)
@click.option(
    "--timeout", type=POSITIVE_SECONDS, default=3.0, show_default=True, help="Seconds per request."
)
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
        # userData often carries a bootstrap secret: the file is the owner's alone, also
        # one that was there (the mode of open() applies to a new file only); the chmod
        # comes before anything is written.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            os.fchmod(fd, 0o600)
            handle.write(text)
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror}")
    ids = data.get("identities", {})
    count = len(ids.get("userAssigned", [])) + ("systemAssigned" in ids)
    noun = "identity" if count == 1 else "identities"
    click.echo(f"captured {data['name']} ({count} {noun}) into {output}", err=True)


COMMANDS: tuple[click.Command, ...] = (vm, capture)
