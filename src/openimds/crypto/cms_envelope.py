"""CMS EnvelopedData for the WireServer's Certificates document (docs/guests.md).

Azure answers `comp=certificates` with a `Pkcs7BlobWithPfxContents`: a password-less
PKCS#12 of the VM's certificates, encrypted to the transport certificate the guest agent
sent in `x-ms-guest-agent-public-x509-cert`, with the cipher it named in
`x-ms-cipher-name`. The agents decrypt it with `openssl cms -decrypt`. cryptography's
`PKCS7EnvelopeBuilder` offers AES only, and the agents still ask for DES_EDE3_CBC, so the
EnvelopedData (RFC 5652 section 6: one key-transport recipient, RSA PKCS#1 v1.5) is built
here in DER, which is a few lines.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Sequence
from typing import Final

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

# x-ms-cipher-name -> (OID, key bytes, block bytes).
CIPHERS: Final[dict[str, tuple[str, int, int]]] = {
    "DES_EDE3_CBC": ("1.2.840.113549.3.7", 24, 8),
    "AES128_CBC": ("2.16.840.1.101.3.4.1.2", 16, 16),
}
DEFAULT_CIPHER: Final = "DES_EDE3_CBC"  # what the agents send when they name one
_ENVELOPED_DATA: Final = "1.2.840.113549.1.7.3"
_DATA: Final = "1.2.840.113549.1.7.1"
_RSA_ENCRYPTION: Final = "1.2.840.113549.1.1.1"
# Certificates made for SSH keys are valid over a fixed span, so the same key always
# gives the same certificate, and the same thumbprint, on every node and after a restart.
_NOT_BEFORE: Final = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER: Final = datetime.datetime(2049, 12, 31, tzinfo=datetime.UTC)


class TransportCertError(ValueError):
    """The guest's transport certificate is missing, not DER or has no RSA key."""


def transport_key(header_value: str) -> x509.Certificate:
    """The certificate of x-ms-guest-agent-public-x509-cert (base64 DER, as the agents
    send it: the PEM body, possibly with its line breaks)."""
    import base64
    import binascii

    try:
        der = base64.b64decode("".join(header_value.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise TransportCertError("the transport certificate is not base64 DER") from None
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise TransportCertError("the transport certificate has no RSA key")
    return cert


def seal(content: bytes, recipient: x509.Certificate, cipher: str = DEFAULT_CIPHER) -> bytes:
    """`content` as DER ContentInfo(EnvelopedData) that only `recipient`'s key opens."""
    oid, key_size, block = CIPHERS[cipher]
    key, iv = os.urandom(key_size), os.urandom(block)
    algorithm: CipherAlgorithm = TripleDES(key) if key_size == 24 else algorithms.AES(key)
    padder = padding.PKCS7(block * 8).padder()
    plain = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(plain) + encryptor.finalize()
    public = recipient.public_key()
    assert isinstance(public, rsa.RSAPublicKey)  # transport_key checked it
    wrapped = public.encrypt(key, rsa_padding.PKCS1v15())
    recipient_info = _seq(
        _int(0),
        _seq(recipient.issuer.public_bytes(), _int(recipient.serial_number)),
        _seq(_oid(_RSA_ENCRYPTION), b"\x05\x00"),
        _tlv(0x04, wrapped),
    )
    content_info = _seq(_oid(_DATA), _seq(_oid(oid), _tlv(0x04, iv)), _tlv(0x80, encrypted))
    enveloped = _seq(_int(0), _tlv(0x31, recipient_info), content_info)
    return _seq(_oid(_ENVELOPED_DATA), _tlv(0xA0, enveloped))


def pfx(certificates: Sequence[x509.Certificate]) -> bytes:
    """A PKCS#12 of certificates without a password (what `openssl pkcs12 -password
    pass:` reads)."""
    return pkcs12.serialize_key_and_certificates(
        None, None, None, list(certificates), serialization.NoEncryption()
    )


def key_certificate(
    public_key: CertificatePublicKeyTypes,
    subject: str,
    issuer_key: rsa.RSAPrivateKey,
) -> x509.Certificate:
    """A certificate holding a guest's SSH public key, as Azure hands SSH keys given as
    certificates to the guest: the agent takes the key back out of it. Deterministic
    (fixed validity, serial from the key, PKCS#1 v1.5 signature): same key, same bytes."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    serial = int.from_bytes(hashlib.sha256(spki).digest()[:16], "big") >> 1
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openimds guest certificates")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .sign(issuer_key, hashes.SHA256())
    )


def thumbprint(cert: x509.Certificate) -> str:
    """The SHA-1 thumbprint, upper-case hex, as the OVF and the agents name certificates."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


# -- DER ------------------------------------------------------------------------------------
def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return _tlv(0x02, raw)


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        rest = part >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return _tlv(0x06, bytes(out))
