"""Attested data over real HTTP: the endpoint, the issuer routes, persistence, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openimds.crypto.pkcs7 import parse_signed_data
from openimds.crypto.verify import aia_urls, verify_document
from tests.support.attested import (
    DOCUMENT,
    fetch_answer,
    free_port,
    run_cli,
    signature_der,
    start_attested_server,
)
from tests.support.server import RunningServer, server_fixture, start_server

server = server_fixture("server", start=start_attested_server)


def root_of(server: RunningServer) -> x509.Certificate:
    response = httpx.get(server.admin_url + "/attested/root.crt")  # public: no token
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-cert"
    return x509.load_der_x509_certificate(response.content)


def http_fetch(url: str) -> bytes:
    response = httpx.get(url)
    response.raise_for_status()
    return response.content


def test_document_verifies_end_to_end(server: RunningServer) -> None:
    answer = fetch_answer(server, nonce="1234566766")
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return http_fetch(url)

    result = verify_document(answer, [root_of(server)], nonce="1234566766", fetch=fetch)
    # The intermediate came from the AIA URL, served by the admin listener.
    assert fetched == [server.admin_url + "/attested/intermediate.crt"]
    doc = result.document
    assert doc["vmId"] == "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
    assert set(doc) == {"nonce", "plan", "sku", "subscriptionId", "timeStamp", "vmId"}


def test_answer_headers_and_shape(server: RunningServer) -> None:
    response = server.get(DOCUMENT, params={"api-version": "2018-10-01", "nonce": "abc"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert list(response.json()) == ["encoding", "signature"]
    content = json.loads(parse_signed_data(signature_der(response.text)).content)
    assert set(content) == {"nonce", "plan", "timeStamp", "vmId"}  # 2018-10-01 fields


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"api-version": "2018-04-02"}, "api-version is invalid"),
        ({}, "api-version is invalid"),
        ({"api-version": "2021-02-01", "nonce": "x" * 33}, "nonce must be"),
        ({"api-version": "2021-02-01", "nonce": "no-dashes"}, "nonce must be"),
    ],
)
def test_bad_requests(server: RunningServer, params: dict[str, str], needle: str) -> None:
    response = server.get(DOCUMENT, params=params)
    assert response.status_code == 400
    assert needle in response.json()["error"]


def test_metadata_header_required(server: RunningServer) -> None:
    response = server.get(DOCUMENT, params={"api-version": "2021-02-01"}, metadata=False)
    assert response.status_code == 400


def test_same_nonce_is_served_from_the_short_cache(server: RunningServer) -> None:
    first = fetch_answer(server, nonce="cached1")
    assert fetch_answer(server, nonce="cached1") == first  # default TTL 5 s
    assert fetch_answer(server, nonce="cached2") != first


def test_admin_certificate_routes(server: RunningServer) -> None:
    assert httpx.get(server.admin_url + "/attested/ca").status_code == 401
    data = server.admin("GET", "/attested/ca").json()
    root = root_of(server)
    assert x509.load_pem_x509_certificate(data["root"].encode()) == root
    inter = http_fetch(server.admin_url + "/attested/intermediate.crt")
    assert data["intermediates"] == [
        x509.load_der_x509_certificate(inter).public_bytes(serialization.Encoding.PEM).decode()
    ]
    for text in (json.dumps(data), inter.decode("latin-1")):
        assert "PRIVATE KEY" not in text


def test_ca_export_and_cli_verify(server: RunningServer, tmp_path: Path) -> None:
    exported = run_cli(server, "ca", "export", str(tmp_path / "trust"))
    assert exported.returncode == 0, exported.stderr
    root_pem = (tmp_path / "trust" / "root.pem").read_bytes()
    assert x509.load_pem_x509_certificate(root_pem) == root_of(server)
    assert (tmp_path / "trust" / "intermediate.pem").read_text().startswith("-----BEGIN")
    doc = tmp_path / "doc.json"
    doc.write_text(fetch_answer(server, nonce="cli1"))
    ca_file = str(tmp_path / "trust" / "root.pem")
    ok = run_cli(server, "attested", "verify", "--nonce", "cli1", "--ca-file", ca_file, str(doc))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["nonce"] == "cli1"
    assert "verified" in ok.stderr


def test_cli_verify_failures(server: RunningServer, tmp_path: Path) -> None:
    answer = fetch_answer(server, nonce="cli2")
    wrong = run_cli(server, "attested", "verify", "--nonce", "other", "-", stdin=answer)
    assert wrong.returncode == 1
    assert "failed at nonce" in wrong.stderr
    later = (datetime.now(UTC) + timedelta(hours=6, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired = run_cli(server, "attested", "verify", "--at", later, "-", stdin=answer)
    assert expired.returncode == 1
    assert "failed at expiry" in expired.stderr
    garbage = run_cli(server, "attested", "verify", "-", stdin="{not json")
    assert garbage.returncode == 1
    assert "failed at decode" in garbage.stderr
    us = run_cli(server, "attested", "verify", "--domain", "metadata.azure.us", "-", stdin=answer)
    assert us.returncode == 1
    assert "failed at san" in us.stderr


def test_ca_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    first = start_attested_server(tmp_path, admin_port=port)
    try:
        root = root_of(first)
        answer = fetch_answer(first, nonce="before")
    finally:
        first.stop()
    again = start_attested_server(tmp_path, state_path=first.state_path, admin_port=port)
    try:
        assert root_of(again) == root
        # Same names and AIA URL: the stored signing certificate is reused, and a
        # document from before the restart still verifies through the AIA URL.
        verify_document(answer, [root], nonce="before", fetch=http_fetch)
        fresh = fetch_answer(again, nonce="after")
        signer = parse_signed_data(signature_der(fresh)).signer()
        assert signer == parse_signed_data(signature_der(answer)).signer()
        verify_document(fresh, [root], nonce="after", fetch=http_fetch)
    finally:
        again.stop()


def test_quirk_and_cloud_from_config(tmp_path: Path) -> None:
    config = tmp_path / "vm.yaml"
    config.write_text(
        "attested:\n  cached_nonce_quirk: true\n  cache_ttl_seconds: 60\n"
        "name: gov-vm\ninstance:\n  compute:\n    azEnvironment: AzureUSGovernmentCloud\n"
        "    vmId: 11111111-2222-3333-4444-555555555555\n    licenseType: Windows_Server\n"
    )
    server = start_attested_server(tmp_path, config=str(config))
    try:
        first = fetch_answer(server, nonce="first")
        second = fetch_answer(server, nonce="second")
        assert second == first  # Azure's quirk: the cached nonce comes back
        result = verify_document(
            second, [root_of(server)], domains=["metadata.azure.us"], fetch=http_fetch
        )
        assert result.document["nonce"] == "first"
        assert result.document["licenseType"] == "Windows_Server"
        names = result.signer.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.value.get_values_for_type(x509.DNSName) == [
            "metadata.azure.us",
            "*.metadata.azure.us",
        ]
    finally:
        server.stop()


def test_no_aia_without_a_known_admin_port(tmp_path: Path) -> None:
    # Port 0 is only known after binding, so the URL is left out rather than wrong.
    server = start_server(tmp_path)
    try:
        signed = parse_signed_data(signature_der(fetch_answer(server, nonce="n")))
        assert aia_urls(signed.signer()) == []
    finally:
        server.stop()


def test_bad_certificate_files_stop_the_server_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    missing = tmp_path / "missing.pem"
    config.write_text(f"attested:\n  ca_cert_file: {missing}\n  ca_key_file: {missing}\n")
    with pytest.raises(RuntimeError, match=r"attested data: cannot read .*missing\.pem"):
        start_server(tmp_path, config=str(config), timeout=10)
