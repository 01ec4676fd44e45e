"""Attested documents checked by independent clients: the openssl command line (as in
Microsoft's Linux sample) and a Python validation written the way Microsoft documents it
(Azure's "How clients validate" steps), both against a document fetched over real HTTP.

OpenSSL 3.0's `cms` has no `-untrusted`; `-CAfile` takes the root and the intermediate
fetched from the AIA URL, and the chain check of the sample (`openssl verify -CAfile
root.pem -untrusted intermediate.pem signer.pem`) keeps the intermediate untrusted.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AuthorityInformationAccessOID

from openimds.crypto.ca import issue_root
from openimds.crypto.pkcs7 import CmsError, parse_signed_data, verify_signature
from tests.support.attested import fetch_answer, run_cli, signature_der, start_attested_server
from tests.support.server import RunningServer

pytestmark = pytest.mark.clients
OPENSSL = shutil.which("openssl") or "openssl"


@dataclass
class Setup:
    server: RunningServer
    trust: Path  # root.pem and intermediate.pem from `openimds ca export`
    work: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("openssl-attested")
    server = start_attested_server(work)
    exported = run_cli(server, "ca", "export", str(work / "trust"))
    assert exported.returncode == 0, exported.stderr
    yield Setup(server, work / "trust", work)
    server.stop()


def openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, timeout=30, check=False)


def aia_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
    ]
    assert len(urls) == 1
    return urls[0]


def fetch_intermediate(signer: x509.Certificate) -> x509.Certificate:
    """What validation code does: follow the AIA "CA Issuers" URL (DER, as Azure's)."""
    response = httpx.get(aia_url(signer))
    assert response.status_code == 200
    return x509.load_der_x509_certificate(response.content)


def pem_file(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def document(setup: Setup, nonce: str, name: str) -> tuple[bytes, Path]:
    der = signature_der(fetch_answer(setup.server, nonce=nonce))
    path = setup.work / f"{name}.der"
    path.write_bytes(der)
    return der, path


def signer_of(der: bytes) -> x509.Certificate:
    certs = pkcs7.load_der_pkcs7_certificates(der)
    assert len(certs) == 1  # the signer only, as Azure embeds
    return certs[0]


# -- openssl ----------------------------------------------------------------------------


def test_openssl_cms_verifies_the_document(setup: Setup) -> None:
    der, path = document(setup, "opensslcms1", "cms")
    intermediate = fetch_intermediate(signer_of(der))
    root = x509.load_pem_x509_certificate((setup.trust / "root.pem").read_bytes())
    ca_file = pem_file(setup.work / "root+intermediate.pem", root, intermediate)
    result = openssl("cms", "-verify", "-inform", "DER", "-in", path, "-CAfile", ca_file)
    assert result.returncode == 0, result.stderr
    assert b"Verification successful" in result.stderr
    assert json.loads(result.stdout)["nonce"] == "opensslcms1"


def test_microsofts_openssl_sample_flow(setup: Setup) -> None:
    der, _ = document(setup, "sample1", "sample")
    sign = setup.work / "sign.pk7"
    b64 = base64.b64encode(der).decode()
    sign.write_text(f"-----BEGIN PKCS7-----\n{b64}\n-----END PKCS7-----\n")
    # Verify the signature (the sample uses -noverify here and checks the chain next).
    check = openssl("smime", "-verify", "-in", sign, "-inform", "pem", "-noverify")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["nonce"] == "sample1"
    certs = openssl("pkcs7", "-in", sign, "-inform", "pem", "-print_certs")
    signer = setup.work / "signer.pem"
    signer.write_bytes(certs.stdout)
    subject = openssl("x509", "-in", signer, "-noout", "-ext", "subjectAltName")
    assert b"DNS:metadata.azure.com" in subject.stdout
    text = openssl("x509", "-in", signer, "-text", "-noout").stdout.decode()
    url = next(ln for ln in text.splitlines() if "CA Issuers - URI:" in ln).split("URI:")[1]
    (setup.work / "intermediate.cer").write_bytes(httpx.get(url.strip()).content)
    inter = setup.work / "intermediate-from-aia.pem"
    conv = openssl("x509", "-inform", "der", "-in", setup.work / "intermediate.cer", "-out", inter)
    assert conv.returncode == 0, conv.stderr
    chain = openssl("verify", "-CAfile", setup.trust / "root.pem", "-untrusted", inter, signer)
    assert chain.returncode == 0, chain.stdout + chain.stderr
    assert b": OK" in chain.stdout


def test_openssl_rejects_a_flipped_signature_byte(setup: Setup) -> None:
    der, _ = document(setup, "flip1", "flip-src")
    broken = bytearray(der)
    broken[-7] ^= 0x40  # inside the signature, the last element of the SignedData
    path = setup.work / "flipped.der"
    path.write_bytes(bytes(broken))
    bundle = pem_file(
        setup.work / "bundle-flip.pem",
        x509.load_pem_x509_certificate((setup.trust / "root.pem").read_bytes()),
        fetch_intermediate(signer_of(der)),
    )
    result = openssl("cms", "-verify", "-inform", "DER", "-in", path, "-CAfile", bundle)
    assert result.returncode != 0
    assert b"Verification failure" in result.stderr
    unchained = openssl("cms", "-verify", "-inform", "DER", "-in", path, "-noverify")
    assert unchained.returncode != 0


def test_openssl_rejects_a_different_root(setup: Setup) -> None:
    der, path = document(setup, "otherroot1", "other")
    intermediate = fetch_intermediate(signer_of(der))
    stranger = issue_root(datetime.now(UTC)).cert
    bundle = pem_file(setup.work / "stranger+intermediate.pem", stranger, intermediate)
    result = openssl("cms", "-verify", "-inform", "DER", "-in", path, "-CAfile", bundle)
    assert result.returncode != 0
    signer = pem_file(setup.work / "signer-other.pem", signer_of(der))
    inter = pem_file(setup.work / "inter-other.pem", intermediate)
    stranger_pem = pem_file(setup.work / "stranger.pem", stranger)
    chain = openssl("verify", "-CAfile", stranger_pem, "-untrusted", inter, signer)
    assert chain.returncode != 0


# -- a Python validation written as Microsoft documents it ------------------------------


class Invalid(Exception):
    pass


def validate(der: bytes, root: x509.Certificate, nonce: str, now: datetime) -> dict[str, Any]:
    """1 decode + parse PKCS#7; 2 signer cert, intermediate from its AIA URL; 3 chain to the
    trusted root; 4 SAN under the cloud domain; 5 signed content, nonce, expiresOn."""
    signer = signer_of(der)
    intermediate = fetch_intermediate(signer)
    try:
        signer.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(root)
    except Exception as exc:
        raise Invalid(f"chain: {exc!r}") from exc
    for cert in (signer, intermediate, root):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Invalid("chain: certificate outside its validity")
    san = signer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = san.get_values_for_type(x509.DNSName)
    if not any(n == "metadata.azure.com" or n.endswith(".metadata.azure.com") for n in names):
        raise Invalid("san")
    signed = parse_signed_data(der)
    try:
        verify_signature(signed, signer)
    except CmsError as exc:
        raise Invalid(f"signature: {exc}") from exc
    doc: dict[str, Any] = json.loads(signed.content)
    if doc["nonce"] != nonce:
        raise Invalid("nonce")
    stamp = doc["timeStamp"]["expiresOn"]
    if now > datetime.strptime(stamp, "%m/%d/%y %H:%M:%S -0000").replace(tzinfo=UTC):
        raise Invalid("expired")
    return doc


@pytest.fixture(scope="module")
def exported_root(setup: Setup) -> x509.Certificate:
    return x509.load_pem_x509_certificate((setup.trust / "root.pem").read_bytes())


def test_python_validation_passes(setup: Setup, exported_root: x509.Certificate) -> None:
    der, _ = document(setup, "py1", "py1")
    doc = validate(der, exported_root, "py1", datetime.now(UTC))
    assert doc["vmId"] == "02aab8a4-74ef-476e-8182-f6d2ba4166a6"


def test_python_validation_fails_on_tampering(
    setup: Setup, exported_root: x509.Certificate
) -> None:
    der, _ = document(setup, "py2", "py2")
    tampered = der.replace(b'"nonce":"py2"', b'"nonce":"py3"')
    assert tampered != der
    with pytest.raises(Invalid, match="signature"):
        validate(tampered, exported_root, "py3", datetime.now(UTC))


def test_python_validation_fails_on_a_wrong_nonce(
    setup: Setup, exported_root: x509.Certificate
) -> None:
    der, _ = document(setup, "py4", "py4")
    with pytest.raises(Invalid, match="nonce"):
        validate(der, exported_root, "py5", datetime.now(UTC))


def test_python_validation_fails_once_expired(
    setup: Setup, exported_root: x509.Certificate
) -> None:
    der, _ = document(setup, "py6", "py6")
    # Virtual clock: six hours (the default validity) and a minute later.
    later = datetime.now(UTC) + timedelta(hours=6, minutes=1)
    validate(der, exported_root, "py6", later - timedelta(minutes=2))
    with pytest.raises(Invalid, match="expired"):
        validate(der, exported_root, "py6", later)


def test_python_validation_fails_with_another_root(setup: Setup) -> None:
    der, _ = document(setup, "py7", "py7")
    with pytest.raises(Invalid, match="chain"):
        validate(der, issue_root(datetime.now(UTC)).cert, "py7", datetime.now(UTC))
