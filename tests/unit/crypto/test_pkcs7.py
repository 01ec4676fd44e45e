"""PKCS#7 signing as Azure signs, and parsing and checking a signature, on real keys."""

from __future__ import annotations

import pytest

from openimds.crypto.ca import CertificateAuthority
from openimds.crypto.pkcs7 import CmsError, Pkcs7Signer, parse_signed_data, verify_signature
from openimds.crypto.verify import VerificationError, verify_document
from tests.support.pkcs7 import AT, CONTENT, answer, roots


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


def test_cloud_override_signs_with_that_clouds_names(ca: CertificateAuthority) -> None:
    der = Pkcs7Signer(ca, "usgov").sign(CONTENT, "AzurePublicCloud")
    trust = roots(ca)
    verify_document(
        answer(der), trust, at=AT, intermediates=ca.intermediates, domains=["metadata.azure.us"]
    )
    with pytest.raises(VerificationError, match="san"):
        verify_document(
            answer(der),
            trust,
            at=AT,
            intermediates=ca.intermediates,
            domains=["metadata.azure.com"],
        )
