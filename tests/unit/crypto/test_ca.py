"""The attested-data CA: what it creates, keeps, re-issues and loads from files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from openimds.config.model import AttestedSettings
from openimds.crypto.ca import (
    KIND,
    CaError,
    CertificateAuthority,
    KeyPair,
    cloud_of,
    issue_intermediate,
    issue_root,
    issue_signing,
    load_pair,
    pem,
)
from openimds.store import open_store
from openimds.store.memory import MemoryStore
from tests.support.pkcs7 import AIA


def sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize(
    ("env", "cloud", "names"),
    [
        ("AzurePublicCloud", "public", ["metadata.azure.com", "*.metadata.azure.com"]),
        ("AzureUSGovernmentCloud", "usgov", ["metadata.azure.us", "*.metadata.azure.us"]),
        ("AzureChinaCloud", "china", ["metadata.azure.cn", "*.metadata.azure.cn"]),
        (
            "AzureGermanCloud",
            "germany",
            ["metadata.microsoftazure.de", "*.metadata.microsoftazure.de"],
        ),
        ("", "public", ["metadata.azure.com", "*.metadata.azure.com"]),
    ],
)
def test_signing_names_follow_the_cloud(env: str, cloud: str, names: list[str]) -> None:
    assert cloud_of(env) == cloud
    ca = CertificateAuthority(MemoryStore(), AttestedSettings(), AIA)
    assert sans(ca.signing(cloud_of(env)).cert) == names


def test_chain_passes_a_strict_web_pki_verifier() -> None:
    ca = CertificateAuthority(MemoryStore(), AttestedSettings(), AIA)
    assert ca.root is not None and ca.intermediate is not None
    leaf = ca.signing("public").cert
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca.root]))
        .build_server_verifier(x509.DNSName("metadata.azure.com"))
    )
    chain = verifier.verify(leaf, [ca.intermediate.cert])
    assert [c.subject for c in chain] == [
        leaf.subject,
        ca.intermediate.cert.subject,
        ca.root.subject,
    ]


def test_signing_certificate_extensions() -> None:
    ca = CertificateAuthority(MemoryStore(), AttestedSettings(), AIA)
    cert = ca.signing("public").cert
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(d.access_method, d.access_location.value) for d in aia] == [
        (AuthorityInformationAccessOID.CA_ISSUERS, AIA)
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_no_aia_when_the_url_is_unknown() -> None:
    cert = CertificateAuthority(MemoryStore(), AttestedSettings(), None).signing("public").cert
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def test_material_survives_a_restart_on_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = open_store(path)
    first = CertificateAuthority(store, AttestedSettings(), AIA)
    leaf = first.signing("public").cert
    store.close()
    store = open_store(path)
    again = CertificateAuthority(store, AttestedSettings(), AIA)
    assert again.root == first.root
    assert again.intermediates == first.intermediates
    assert again.signing("public").cert == leaf
    keys = [k for k, _ in store.list_records(KIND)]
    assert keys == ["intermediate", "root", "signing/public"]
    store.close()


def test_signing_certificate_reissued_when_aia_or_names_change() -> None:
    store = MemoryStore()
    old = CertificateAuthority(store, AttestedSettings(), AIA).signing("public").cert
    moved = CertificateAuthority(store, AttestedSettings(), "http://ca.example/x.crt")
    new = moved.signing("public").cert
    assert new != old
    renamed = CertificateAuthority(
        store, AttestedSettings(san_dns_names=["eastus.metadata.azure.com"]), AIA
    )
    assert sans(renamed.signing("public").cert) == ["eastus.metadata.azure.com"]
    assert renamed.root == moved.root  # the root a user exported stays valid


def test_signing_certificate_renewed_before_expiry() -> None:
    clock = [datetime.now(UTC)]
    ca = CertificateAuthority(MemoryStore(), AttestedSettings(), AIA, clock=lambda: clock[0])
    first = ca.signing("public").cert
    clock[0] += timedelta(days=300)
    assert ca.signing("public").cert == first
    clock[0] += timedelta(days=40)  # within 30 days of the one-year lifetime
    renewed = ca.signing("public").cert
    assert renewed != first
    assert renewed.not_valid_after_utc > clock[0] + timedelta(days=300)


def test_a_node_uses_what_another_node_renewed_in_a_shared_store() -> None:
    store = MemoryStore()
    clock = [datetime.now(UTC)]
    a = CertificateAuthority(store, AttestedSettings(), AIA, clock=lambda: clock[0])
    b = CertificateAuthority(store, AttestedSettings(), AIA, clock=lambda: clock[0])
    assert a.signing("public").cert == b.signing("public").cert  # one store, one answer
    # Near the end of the intermediate's five years node A renews it, and its signing
    # certificate under it. B, told nothing, would still sign under the old intermediate.
    clock[0] += timedelta(days=5 * 365 - 20)
    a.forget("*")
    renewed = a.intermediates
    signing = a.signing("public").cert
    assert b.intermediates != renewed
    b.forget("intermediate")  # what the change feed delivers
    assert b.intermediates == renewed
    assert b.signing("public").cert == signing  # loaded, not issued again over A's


def _write(pair: KeyPair, directory: Path, stem: str) -> tuple[str, str]:
    cert = directory / f"{stem}.pem"
    key = directory / f"{stem}.key"
    cert.write_bytes(pair.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        pair.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert), str(key)


def test_user_ca_issues_the_intermediate(tmp_path: Path) -> None:
    root = issue_root(datetime.now(UTC))
    cert_file, key_file = _write(root, tmp_path, "root")
    settings = AttestedSettings(ca_cert_file=cert_file, ca_key_file=key_file)
    store = MemoryStore()
    ca = CertificateAuthority(store, settings, AIA)
    assert ca.root == root.cert
    assert ca.intermediate is not None
    ca.intermediate.cert.verify_directly_issued_by(root.cert)
    assert store.get_record(KIND, "root") is None  # the user's key is not copied
    # Another CA file later: a new intermediate under it.
    other = issue_root(datetime.now(UTC))
    cert_file, key_file = _write(other, tmp_path, "other")
    switched = CertificateAuthority(
        store, AttestedSettings(ca_cert_file=cert_file, ca_key_file=key_file), AIA
    )
    assert switched.intermediate is not None
    switched.intermediate.cert.verify_directly_issued_by(other.cert)


def test_user_signing_certificate_and_chain(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    root = issue_root(now)
    inter = issue_intermediate(root, now)
    leaf = issue_signing(inter, ["vendor.metadata.azure.com"], None, now)
    cert_file, key_file = _write(leaf, tmp_path, "leaf")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        inter.cert.public_bytes(serialization.Encoding.PEM)
        + root.cert.public_bytes(serialization.Encoding.PEM)
    )
    settings = AttestedSettings(
        signing_cert_file=cert_file, signing_key_file=key_file, chain_file=str(chain)
    )
    store = MemoryStore()
    ca = CertificateAuthority(store, settings, AIA)
    assert ca.signing("china").cert == leaf.cert
    assert ca.root == root.cert
    assert ca.intermediates == [inter.cert]
    assert store.list_records(KIND) == []


def test_mismatched_key_file_is_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    a, b = issue_root(now), issue_root(now)
    cert_file, _ = _write(a, tmp_path, "a")
    _, key_file = _write(b, tmp_path, "b")
    with pytest.raises(CaError, match="is not the key of"):
        CertificateAuthority(
            MemoryStore(), AttestedSettings(ca_cert_file=cert_file, ca_key_file=key_file), AIA
        )


def test_unreadable_files_are_worded_for_the_user(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(CaError, match="cannot read"):
        CertificateAuthority(
            MemoryStore(), AttestedSettings(ca_cert_file=missing, ca_key_file=missing), AIA
        )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(CaError, match="not a PEM certificate"):
        CertificateAuthority(
            MemoryStore(),
            AttestedSettings(ca_cert_file=str(garbage), ca_key_file=str(garbage)),
            AIA,
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"ca_cert_file": "a.pem"},
        {"signing_cert_file": "a.pem"},
        {"chain_file": "c.pem"},
        {
            "ca_cert_file": "a",
            "ca_key_file": "b",
            "signing_cert_file": "c",
            "signing_key_file": "d",
        },
    ],
)
def test_settings_refuse_incomplete_file_sets(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"give|goes with"):
        AttestedSettings(**fields)


def test_keys_are_made_on_prepare_not_in_the_constructor() -> None:
    store = MemoryStore()
    ca = CertificateAuthority(store, AttestedSettings(), AIA)
    assert store.list_records(KIND) == []  # start-up stays cheap; prepare runs on a thread
    ca.prepare(["public", "china"])
    assert [k for k, _ in store.list_records(KIND)] == [
        "intermediate",
        "root",
        "signing/china",
        "signing/public",
    ]


def test_a_der_key_is_named_as_the_bad_file(tmp_path: Path) -> None:
    root = issue_root(datetime(2026, 1, 1, tzinfo=UTC))
    cert, key = tmp_path / "ca.pem", tmp_path / "ca.key.der"
    cert.write_text(pem(root.cert))
    key.write_bytes(
        root.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(CaError) as caught:
        load_pair(str(cert), str(key))
    assert str(caught.value) == f"{key}: not an unencrypted PEM private key (not text)"
    with pytest.raises(CaError, match=r"cannot read .*: Is a directory"):
        load_pair(str(cert), str(tmp_path))
