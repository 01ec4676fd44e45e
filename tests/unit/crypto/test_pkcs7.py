"""PKCS#7 signing and Microsoft's validation steps, on real keys, without a server."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openimds.config.model import AttestedSettings
from openimds.crypto.ca import CertificateAuthority, issue_root
from openimds.crypto.pkcs7 import CmsError, Pkcs7Signer, parse_signed_data, verify_signature
from openimds.crypto.verify import VerificationError, decode, verify_document
from openimds.store.memory import MemoryStore

AIA = "http://127.0.0.1:8081/attested/intermediate.crt"
CONTENT = (
    b'{"nonce":"abc123","plan":{"name":"","product":"","publisher":""},'
    b'"timeStamp":{"createdOn":"11/28/18 00:16:17 -0000","expiresOn":"11/28/18 06:16:17 -0000"},'
    b'"vmId":"v"}'
)
AT = datetime(2018, 11, 28, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    # Certificates backdated so that AT (2018) lies inside their validity.
    return CertificateAuthority(
        MemoryStore(), AttestedSettings(), AIA, clock=lambda: datetime(2018, 11, 1, tzinfo=UTC)
    )


@pytest.fixture(scope="module")
def der(ca: CertificateAuthority) -> bytes:
    return Pkcs7Signer(ca).sign(CONTENT, "AzurePublicCloud")


def answer(der: bytes) -> str:
    return json.dumps({"encoding": "pkcs7", "signature": base64.b64encode(der).decode()})


def roots(ca: CertificateAuthority) -> list[x509.Certificate]:
    assert ca.root is not None
    return [ca.root]


def fetch_from(ca: CertificateAuthority) -> dict[str, bytes]:
    return {AIA: ca.intermediates[0].public_bytes(serialization.Encoding.DER)}


def test_signed_data_is_azure_shaped(ca: CertificateAuthority, der: bytes) -> None:
    signed = parse_signed_data(der)
    assert signed.content == CONTENT  # attached, byte for byte (no MIME line endings)
    assert signed.digest_oid == "2.16.840.1.101.3.4.2.1"  # SHA-256
    assert signed.certificates == [ca.signing("public").cert]  # signer only, as Azure
    assert signed.signed_attrs is None  # the signature covers the JSON, as Azure's
    verify_signature(signed, signed.signer())


SHA256_OID = bytes.fromhex("0609608648016503040201")
SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")


def test_azure_digest_oid_is_accepted(ca: CertificateAuthority, der: bytes) -> None:
    # Azure's example names sha256WithRSAEncryption as the digest algorithm. Without
    # signed attributes that OID is not covered by the signature, so swapping it in
    # gives an Azure-shaped document that must still verify.
    azure_shaped = der.replace(SHA256_OID, SHA256_RSA_OID)
    assert azure_shaped.count(SHA256_RSA_OID) >= 2
    signed = parse_signed_data(azure_shaped)
    assert signed.digest_oid == "1.2.840.113549.1.1.11"
    verify_signature(signed, signed.signer())
    result = verify_document(answer(azure_shaped), roots(ca), at=AT, intermediates=ca.intermediates)
    assert result.document["nonce"] == "abc123"


def test_tampered_content_fails(der: bytes) -> None:
    tampered = der.replace(b'"vmId":"v"', b'"vmId":"w"')
    assert tampered != der
    with pytest.raises(CmsError, match="does not verify"):
        verify_signature(parse_signed_data(tampered), parse_signed_data(tampered).signer())


def test_flipped_signature_byte_fails(der: bytes) -> None:
    broken = bytearray(der)
    broken[-5] ^= 0x01  # the signature is the last element
    signed = parse_signed_data(bytes(broken))
    with pytest.raises(CmsError, match="does not verify"):
        verify_signature(signed, signed.signer())


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01", b"\x04\x02ab", b"\x30\x80\x00\x00"])
def test_garbage_is_a_cms_error(garbage: bytes) -> None:
    with pytest.raises(CmsError):
        parse_signed_data(garbage)


def test_verify_fetches_the_intermediate_from_aia(ca: CertificateAuthority, der: bytes) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return fetch_from(ca)[url]

    result = verify_document(answer(der), roots(ca), nonce="abc123", at=AT, fetch=fetch)
    assert fetched == [AIA]
    assert result.document["vmId"] == "v"
    assert len(result.chain) == 3


@pytest.mark.parametrize("form", ["json", "base64", "pem"])
def test_decode_accepts_what_users_have(der: bytes, form: str) -> None:
    b64 = base64.b64encode(der).decode()
    text = {
        "json": answer(der),
        "base64": b64,
        "pem": f"-----BEGIN PKCS7-----\n{b64}\n-----END PKCS7-----\n",
    }[form]
    assert decode(text) == der


def expect_step(step: str, **kwargs: object) -> None:
    with pytest.raises(VerificationError) as info:
        verify_document(**kwargs)  # type: ignore[arg-type]
    assert info.value.step == step


def test_each_failure_names_its_step(ca: CertificateAuthority, der: bytes) -> None:
    inter = ca.intermediates
    good = {"text": answer(der), "roots": roots(ca), "at": AT, "intermediates": inter}
    expect_step("decode", **{**good, "text": "not base64 !!"})
    expect_step("pkcs7", **{**good, "text": base64.b64encode(b"\x30\x00").decode()})
    tampered = answer(der.replace(b'"vmId":"v"', b'"vmId":"w"'))
    expect_step("signature", **{**good, "text": tampered})
    other_root = issue_root(datetime(2018, 1, 1, tzinfo=UTC)).cert
    expect_step("chain", **{**good, "roots": [other_root]})
    expect_step("aia", **{**good, "intermediates": []})  # fetching is off by default
    expect_step("san", **{**good, "domains": ["metadata.azure.us"]})
    expect_step("nonce", **{**good, "nonce": "other"})
    expect_step("expiry", **{**good, "at": AT + timedelta(hours=6)})
    expect_step("chain", **{**good, "at": AT + timedelta(days=4000)})  # certificates expired


def test_cloud_override_signs_with_that_clouds_names(ca: CertificateAuthority) -> None:
    der = Pkcs7Signer(ca, "usgov").sign(CONTENT, "AzurePublicCloud")
    kwargs = {"roots": roots(ca), "at": AT, "intermediates": ca.intermediates}
    verify_document(answer(der), domains=["metadata.azure.us"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(VerificationError, match="san"):
        verify_document(answer(der), domains=["metadata.azure.com"], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"nonce": "x"}'])
def test_content_that_is_not_an_attested_document(ca: CertificateAuthority, content: bytes) -> None:
    der = Pkcs7Signer(ca).sign(content, "AzurePublicCloud")
    expect_step("content", text=answer(der), roots=roots(ca), at=AT, intermediates=ca.intermediates)


def test_a_certificate_without_san_is_judged_by_its_cn() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    from openimds.crypto.verify import check_san

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testsubdomain.metadata.azure.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert check_san(cert, ["metadata.azure.com"]) == "testsubdomain.metadata.azure.com"
    with pytest.raises(VerificationError, match="san"):
        check_san(cert, ["metadata.azure.cn"])
