"""`openimds ca export` and `openimds attested verify`.

Both read the certificates from the running server's admin API (any state backend, no
access to the state file needed); `verify` needs no server at all when given --ca-file.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
from cryptography import x509

from openimds.cli.options import AdminTarget, admin_options
from openimds.config import Config
from openimds.core.timestamps import parse_time


def _certificates(config: Config) -> dict[str, Any]:
    from openimds.cli.admin_client import AdminCallFailed, request

    try:
        data = request(config, "GET", "/attested/ca")
    except AdminCallFailed as exc:
        click.echo(f"openimds: {exc}", err=True)
        sys.exit(1)
    if not isinstance(data, dict):
        click.echo("openimds: unexpected answer from the admin API", err=True)
        sys.exit(1)
    return data


@click.group("ca")
def ca_group() -> None:
    """The certificate authority that signs attested documents."""


@ca_group.command("export")
@admin_options
@click.argument("directory", type=click.Path(file_okay=False))
def ca_export(admin: AdminTarget, directory: str) -> None:
    """Write root.pem and intermediate.pem (from the running server) into DIRECTORY."""
    data = _certificates(admin.config())
    target = Path(directory)
    if not data.get("root"):
        click.echo("openimds: the server has no root certificate to export", err=True)
        sys.exit(1)
    files = {"root.pem": data["root"], "intermediate.pem": "".join(data["intermediates"])}
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            if text:
                (target / name).write_text(text)
                click.echo(str(target / name))
    except OSError as exc:
        click.echo(f"openimds: cannot write to {directory}: {exc.strerror or exc}", err=True)
        sys.exit(1)


def _read_certs(path: str) -> list[x509.Certificate]:
    from openimds.crypto.verify import load_any

    try:
        return load_any(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        click.echo(f"openimds: {path}: cannot load certificates: {exc}", err=True)
        sys.exit(2)


def _fetch(url: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise OSError(f"not an HTTP URL: {url}")
    try:
        response = httpx.get(url, timeout=10.0)
    except httpx.HTTPError as exc:
        raise OSError(str(exc)) from exc
    if response.status_code != 200:
        raise OSError(f"HTTP {response.status_code}")
    return response.content


def _time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """The time forms `events` takes (core.timestamps), as an aware datetime."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(parse_time(value, time.time()), UTC)
    except (ValueError, OverflowError, OSError) as exc:  # a TimeFormError or out of range
        raise click.BadParameter(str(exc)) from None


@click.group("attested")
def attested_group() -> None:
    """Attested data documents."""


@attested_group.command("verify")
@admin_options
@click.argument("source", type=click.File("rb"))
@click.option("--nonce", help="The nonce the document must carry.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Trusted root (PEM). Default: the running server's root, from its admin API.",
)
@click.option("--intermediate", "intermediate_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--domain", "domains", multiple=True, help="Allowed SAN domain (repeatable).")
@click.option(
    "--at",
    callback=_time_option,
    help="Check expiry at this time: RFC 3339 with Z or an offset, RFC 1123, or relative "
    "to now (+6h). Default: now.",
)
@click.option("--no-fetch", is_flag=True, help="Do not fetch the intermediate from the AIA URL.")
def attested_verify(
    admin: AdminTarget,
    source: Any,
    nonce: str | None,
    ca_file: str | None,
    intermediate_file: str | None,
    domains: tuple[str, ...],
    at: datetime | None,
    no_fetch: bool,
) -> None:
    """Check an attested document as Microsoft documents it and print its signed JSON.

    SOURCE is a file or `-` for stdin, holding the IMDS answer, its base64 signature or
    a PEM PKCS7 block. Exits 1 naming the failed step: decode, pkcs7, signature, aia,
    chain, san, nonce or expiry.
    """
    from openimds.crypto.verify import ALL_DOMAINS, VerificationError, verify_document

    intermediates = _read_certs(intermediate_file) if intermediate_file else []
    if ca_file:
        roots = _read_certs(ca_file)
    else:
        data = _certificates(admin.config())
        roots = [x509.load_pem_x509_certificate(data["root"].encode())]
        if not intermediates:
            intermediates = [
                x509.load_pem_x509_certificate(p.encode()) for p in data["intermediates"]
            ]
    try:
        verified = verify_document(
            source.read(),
            roots,
            nonce=nonce,
            at=at,
            domains=domains or ALL_DOMAINS,
            intermediates=intermediates,
            fetch=None if no_fetch else _fetch,
        )
    except VerificationError as exc:
        click.echo(f"openimds: attested verify failed at {exc.step}: {exc.message}", err=True)
        sys.exit(1)
    click.echo(json.dumps(verified.document, indent=2))
    subject = verified.signer.subject.rfc4514_string()
    click.echo(f"verified: signed by {subject}, chain of {len(verified.chain)}", err=True)


COMMANDS = (
    ca_group,
    attested_group,
)
