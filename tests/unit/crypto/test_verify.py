"""Microsoft's validation steps for an attested document, each failure named by its step."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from openimds.crypto.ca import CertificateAuthority, issue_root
from openimds.crypto.pkcs7 import Pkcs7Signer
from openimds.crypto.verify import (
    VerificationError,
    check_san,
    decode,
    examine,
    verify_document,
)
from tests.support.pkcs7 import AIA, AT, answer, roots


def fetch_from(ca: CertificateAuthority) -> dict[str, bytes]:
    return {AIA: ca.intermediates[0].public_bytes(serialization.Encoding.DER)}


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


def expect_step(step: str, **kwargs: Any) -> None:
    """verify_document(**kwargs) fails at `step`."""
    with pytest.raises(VerificationError) as info:
        verify_document(**kwargs)
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


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"nonce": "x"}'])
def test_content_that_is_not_an_attested_document(ca: CertificateAuthority, content: bytes) -> None:
    der = Pkcs7Signer(ca).sign(content, "AzurePublicCloud")
    expect_step("content", text=answer(der), roots=roots(ca), at=AT, intermediates=ca.intermediates)


def test_a_certificate_without_san_is_judged_by_its_cn() -> None:
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


def test_examine_reports_the_failed_step_with_what_it_could_read(
    ca: CertificateAuthority, der: bytes
) -> None:
    good = examine(answer(der), roots(ca), nonce="abc123", at=AT, intermediates=ca.intermediates)
    assert good.errors == [] and good.document is not None and good.document["vmId"] == "v"
    assert good.signer is not None and good.chain[0] == good.signer and len(good.chain) == 3
    other_root = issue_root(datetime(2018, 1, 1, tzinfo=UTC)).cert
    stranger = examine(answer(der), [other_root], at=AT, intermediates=ca.intermediates)
    assert stranger.errors == ["chain: no path from the signer certificate to the root"]
    assert stranger.document == good.document and stranger.signer == good.signer
    assert stranger.chain == []
    nonce = examine(answer(der), roots(ca), nonce="other", at=AT, intermediates=ca.intermediates)
    assert [e.split(":")[0] for e in nonce.errors] == ["nonce"]
    assert examine("not base64 !!", roots(ca), at=AT).document is None
