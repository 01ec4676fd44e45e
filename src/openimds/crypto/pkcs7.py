"""PKCS#7 / CMS SignedData for attested documents (docs/attested.md): signing, and reading one
back for verification.

Azure's documents are DER SignedData with the content attached (`pkcs7-data`), the signer
certificate embedded, SHA-256 with RSA and no signed attributes (the signature covers the
JSON itself; decoded from the documentation's example). `PKCS7SignatureBuilder` gives
that with `Binary` (without it the JSON would be rewritten to canonical MIME line
endings) and `NoAttributes`. Azure's example names its digest algorithm with the
sha256WithRSAEncryption OID rather than sha256; the reader accepts both.

cryptography has no CMS verification, so `parse_signed_data` walks the DER itself: small
and strict (definite lengths only, one signer), which is all a DER document needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from openimds.crypto.ca import CertificateAuthority, Cloud, cloud_of

_OPTIONS: Final = (pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoAttributes)

OID_SIGNED_DATA: Final[str] = "1.2.840.113549.1.7.2"
OID_DATA: Final[str] = "1.2.840.113549.1.7.1"
OID_CONTENT_TYPE: Final[str] = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST: Final[str] = "1.2.840.113549.1.9.4"
_DIGESTS: Final[dict[str, tuple[str, type[hashes.HashAlgorithm]]]] = {
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
    # Azure's SignedData gives the signature algorithm's OID as its digest algorithm.
    "1.2.840.113549.1.1.11": ("sha256", hashes.SHA256),
    "1.2.840.113549.1.1.12": ("sha384", hashes.SHA384),
    "1.2.840.113549.1.1.13": ("sha512", hashes.SHA512),
}


class Pkcs7Signer:
    """The `DocumentSigner` port of core.attested, backed by the CA."""

    def __init__(self, ca: CertificateAuthority, cloud: Cloud | None = None) -> None:
        self.ca = ca
        self.cloud = cloud

    def sign(self, content: bytes, az_environment: str) -> bytes:
        pair = self.ca.signing(self.cloud or cloud_of(az_environment))
        builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
        builder = builder.add_signer(pair.cert, pair.key, hashes.SHA256())
        return builder.sign(serialization.Encoding.DER, _OPTIONS)


class CmsError(ValueError):
    """Not a SignedData we can read, or a signature that does not hold."""


# -- a minimal DER reader -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tlv:
    tag: int
    raw: bytes  # the whole element, tag and length included
    value: bytes

    def children(self) -> list[_Tlv]:
        out: list[_Tlv] = []
        pos = 0
        while pos < len(self.value):
            item, pos = _read(self.value, pos)
            out.append(item)
        return out


def _read(data: bytes, pos: int) -> tuple[_Tlv, int]:
    if pos + 2 > len(data):
        raise CmsError("truncated DER")
    start, tag = pos, data[pos]
    if tag & 0x1F == 0x1F:
        raise CmsError("multi-byte DER tags are not used by CMS")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise CmsError("indefinite or oversized DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise CmsError("truncated DER")
    return _Tlv(tag, data[start:end], data[pos:end]), end


def _oid(tlv: _Tlv) -> str:
    if tlv.tag != 0x06 or not tlv.value:
        raise CmsError("expected an OBJECT IDENTIFIER")
    first = tlv.value[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in tlv.value[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _expect(tlv: _Tlv, tag: int, what: str) -> _Tlv:
    if tlv.tag != tag:
        raise CmsError(f"malformed SignedData: expected {what}")
    return tlv


@dataclass(frozen=True, slots=True)
class SignedData:
    content: bytes
    certificates: list[x509.Certificate]
    digest_oid: str
    signed_attrs: bytes | None  # DER of the SET the signature covers, when present
    message_digest: bytes | None
    signature: bytes
    issuer: bytes  # DER Name of the signer certificate's issuer
    serial: int

    def signer(self) -> x509.Certificate:
        for cert in self.certificates:
            if cert.serial_number == self.serial and cert.issuer.public_bytes() == self.issuer:
                return cert
        raise CmsError("the signer certificate is not embedded in the document")


def parse_signed_data(der: bytes) -> SignedData:
    """ContentInfo -> SignedData with attached content and exactly one signer."""
    try:
        return _parse(der)
    except CmsError:
        raise
    except (IndexError, ValueError) as exc:  # CmsError is a ValueError
        raise CmsError(f"malformed SignedData ({exc})") from exc


def _parse(der: bytes) -> SignedData:
    outer, end = _read(der, 0)
    if end != len(der):
        raise CmsError("trailing bytes after the SignedData")
    info = _expect(outer, 0x30, "ContentInfo").children()
    if len(info) != 2 or _oid(info[0]) != OID_SIGNED_DATA:
        raise CmsError("not a PKCS#7 SignedData")
    body = _expect(_expect(info[1], 0xA0, "[0]").children()[0], 0x30, "SignedData").children()
    encap = _expect(body[2], 0x30, "encapContentInfo").children()
    if _oid(encap[0]) != OID_DATA or len(encap) != 2:
        raise CmsError("the document content is not attached")
    content = _expect(encap[1].children()[0], 0x04, "OCTET STRING content").value
    cert_sets = [c for c in body[3:-1] if c.tag == 0xA0]  # [0] IMPLICIT certificates
    if not cert_sets:
        raise CmsError("no certificates embedded")
    certs = [x509.load_der_x509_certificate(c.raw) for c in cert_sets[0].children()]
    signer_infos = _expect(body[-1], 0x31, "signerInfos").children()
    if len(signer_infos) != 1:
        raise CmsError("expected exactly one signer")
    return _signer_info(signer_infos[0], content, certs)


def _signer_info(tlv: _Tlv, content: bytes, certs: list[x509.Certificate]) -> SignedData:
    fields = _expect(tlv, 0x30, "SignerInfo").children()
    sid = _expect(fields[1], 0x30, "issuerAndSerialNumber").children()
    serial = int.from_bytes(_expect(sid[1], 0x02, "serial").value, "big", signed=True)
    digest_oid = _oid(fields[2].children()[0])
    attrs: bytes | None = None
    digest: bytes | None = None
    index = 3
    if fields[3].tag == 0xA0:
        # The signature covers the attributes re-tagged as a SET (RFC 5652, 5.4).
        attrs = b"\x31" + fields[3].raw[1:]
        digest = _message_digest(fields[3])
        index = 4
    signature = _expect(fields[index + 1], 0x04, "signature").value
    return SignedData(content, certs, digest_oid, attrs, digest, signature, sid[0].raw, serial)


def _message_digest(attrs: _Tlv) -> bytes:
    found: dict[str, _Tlv] = {}
    for attr in attrs.children():
        oid_tlv, values = attr.children()
        found[_oid(oid_tlv)] = values.children()[0]
    if OID_MESSAGE_DIGEST not in found or OID_CONTENT_TYPE not in found:
        raise CmsError("signed attributes lack contentType or messageDigest")
    if _oid(found[OID_CONTENT_TYPE]) != OID_DATA:
        raise CmsError("signed contentType is not data")
    return _expect(found[OID_MESSAGE_DIGEST], 0x04, "messageDigest").value


def verify_signature(signed: SignedData, cert: x509.Certificate) -> None:
    """The content digest matches and the signer's key signed it; else CmsError."""
    if signed.digest_oid not in _DIGESTS:
        raise CmsError(f"unsupported digest algorithm {signed.digest_oid}")
    name, algorithm = _DIGESTS[signed.digest_oid]
    covered = signed.content
    if signed.signed_attrs is not None:
        if hashlib.new(name, signed.content).digest() != signed.message_digest:
            raise CmsError("the content does not match its signed digest (tampered)")
        covered = signed.signed_attrs
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signed.signature, covered, padding.PKCS1v15(), algorithm())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signed.signature, covered, ec.ECDSA(algorithm()))
        else:
            raise CmsError("the signer key is neither RSA nor EC")
    except InvalidSignature as exc:
        raise CmsError("the signature does not verify with the signer certificate") from exc
