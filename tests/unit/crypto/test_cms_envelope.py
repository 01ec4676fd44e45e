"""The Certificates envelope opens with `openssl cms -decrypt`, as the agents open it."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from openimds.crypto import cms_envelope

MIME = (
    'MIME-Version:1.0\nContent-Disposition: attachment; filename="c.p7m"\n'
    'Content-Type: application/x-pkcs7-mime; name="c.p7m"\n'
    "Content-Transfer-Encoding: base64\n\n"
)


def _transport(tmp: Path) -> tuple[Path, Path, str]:
    key, cert = tmp / "t.prv", tmp / "t.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-nodes",
            "-subj",
            "/CN=LinuxTransport",
            "-days",
            "30",
            "-newkey",
            "rsa:2048",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    body = "".join(line for line in cert.read_text().splitlines() if "-----" not in line)
    return key, cert, body


@pytest.mark.parametrize("cipher", sorted(cms_envelope.CIPHERS))
def test_openssl_opens_it_and_finds_the_key_certificate(tmp_path: Path, cipher: str) -> None:
    key, cert, header = _transport(tmp_path)
    issuer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ssh_key = ed25519.Ed25519PrivateKey.generate().public_key()
    made = cms_envelope.key_certificate(ssh_key, "vm-1", issuer)
    sealed = cms_envelope.seal(cms_envelope.pfx([made]), cms_envelope.transport_key(header), cipher)
    data = base64.b64encode(sealed).decode()
    lines = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    p7m = tmp_path / "c.p7m"
    p7m.write_text(MIME + lines)
    opened = subprocess.run(
        ["openssl", "cms", "-decrypt", "-in", p7m, "-inkey", key, "-recip", cert],
        check=True,
        capture_output=True,
    ).stdout
    pem = subprocess.run(
        ["openssl", "pkcs12", "-nodes", "-password", "pass:"],
        input=opened,
        check=True,
        capture_output=True,
    ).stdout
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha1"],
        input=pem,
        check=True,
        capture_output=True,
    ).stdout.decode()
    assert printed.strip().split("=")[1].replace(":", "") == cms_envelope.thumbprint(made)
    assert b"PRIVATE KEY" not in pem  # certificates only: the guest's keys stay its own


def test_the_same_key_makes_the_same_certificate() -> None:
    issuer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    one = cms_envelope.key_certificate(key, "vm", issuer)
    two = cms_envelope.key_certificate(key, "vm", issuer)
    assert one.public_bytes(serialization.Encoding.DER) == two.public_bytes(
        serialization.Encoding.DER
    )


@pytest.mark.parametrize("header", ["", "***", base64.b64encode(b"not a cert").decode()])
def test_a_bad_transport_certificate_is_refused(header: str) -> None:
    with pytest.raises(cms_envelope.TransportCertError):
        cms_envelope.transport_key(header)
