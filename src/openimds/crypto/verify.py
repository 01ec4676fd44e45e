"""Checking an attested document the way Microsoft's IMDS docs tell clients to validate
it: decode, parse the PKCS#7, verify the signature, build the chain from the
signer through the intermediate (from the AIA "CA Issuers" URL unless given) to a
trusted root, check the SAN domain, then the nonce and `expiresOn`.

`openimds attested verify` runs this; each failure names the step that failed.
`examine` runs the same checks for the admin API, which shows a failed check instead of
stopping at it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from openimds.crypto.ca import CLOUD_DOMAINS
from openimds.crypto.pkcs7 import CmsError, SignedData, parse_signed_data, verify_signature

AZURE_TIME: Final[str] = "%m/%d/%y %H:%M:%S -0000"
ALL_DOMAINS: Final[tuple[str, ...]] = tuple(CLOUD_DOMAINS.values())
MAX_CHAIN: Final[int] = 4

Fetch = Callable[[str], bytes]


class VerificationError(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


@dataclass
class Verified:
    document: dict[str, object]
    content: bytes
    signer: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)


def decode(text: str | bytes) -> bytes:
    """DER from what a user has at hand: the IMDS JSON answer, its base64 `signature`,
    or a PEM `PKCS7` block (what Microsoft's openssl sample builds)."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise VerificationError("decode", f"not valid JSON: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("encoding") != "pkcs7":
            raise VerificationError("decode", 'expected {"encoding": "pkcs7", "signature": ...}')
        raw = str(answer.get("signature", ""))
    lines = [ln for ln in raw.splitlines() if not ln.startswith("-----")]
    try:
        return base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("decode", f"the signature is not base64: {exc}") from exc


def aia_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def load_any(data: bytes) -> list[x509.Certificate]:
    """Certificates from PEM (one or more) or a single DER certificate."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):  # bad signature, other name, key type
        return False
    return True


def build_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: datetime,
) -> list[x509.Certificate]:
    """leaf -> ... -> a trusted root, every link signed by the next, all valid at `at`."""
    chain = [leaf]
    current = leaf
    for _ in range(MAX_CHAIN):
        anchor = next((r for r in roots if _issued_by(current, r)), None)
        if anchor is not None:
            chain.append(anchor)
            break
        parent = next(
            (c for c in intermediates if c not in chain and _is_ca(c) and _issued_by(current, c)),
            None,
        )
        if parent is None:
            raise VerificationError("chain", "no path from the signer certificate to the root")
        chain.append(parent)
        current = parent
    else:
        raise VerificationError("chain", "the chain is too long")
    for cert in chain:
        if not _valid_at(cert, at):
            subject = cert.subject.rfc4514_string()
            raise VerificationError("chain", f"{subject} is not valid at {at:%Y-%m-%d %H:%M}Z")
    return chain


def check_san(cert: x509.Certificate, domains: Sequence[str]) -> str:
    """Azure's docs: the signer's SAN must be the cloud domain or any subdomain of it. A certificate
    without DNS names is judged by its subject CN, as the documentation's example
    certificate (CN only) and its "common name from any subdomain" note require."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = [str(a.value).lower() for a in cns]
    for name in names:
        for domain in domains:
            if name == domain or name.endswith("." + domain):
                return name
    shown = ", ".join(names) or "none"
    raise VerificationError("san", f"no name of the signer ({shown}) under {', '.join(domains)}")


def check_content(content: bytes, nonce: str | None, at: datetime) -> dict[str, object]:
    try:
        doc = json.loads(content)
        if not isinstance(doc, dict):
            raise TypeError("the signed content is not a JSON object")
        expires = datetime.strptime(doc["timeStamp"]["expiresOn"], AZURE_TIME).replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError("content", f"not an attested document: {exc}") from exc
    if nonce is not None and doc.get("nonce") != nonce:
        raise VerificationError(
            "nonce", f"expected {nonce!r}, the document has {doc.get('nonce')!r}"
        )
    if at > expires:
        raise VerificationError(
            "expiry", f"the document expired on {doc['timeStamp']['expiresOn']}"
        )
    assert isinstance(doc, dict)
    return doc


def intermediates_for(
    signed: SignedData, signer: x509.Certificate, given: Sequence[x509.Certificate], fetch: Fetch
) -> list[x509.Certificate]:
    found = [c for c in signed.certificates if c != signer] + list(given)
    if found:
        return found
    for url in aia_urls(signer):
        try:
            return load_any(fetch(url))
        except (OSError, ValueError) as exc:
            raise VerificationError(
                "aia", f"cannot fetch the intermediate from {url}: {exc}"
            ) from exc
    return []


def verify_document(
    text: str | bytes,
    roots: Sequence[x509.Certificate],
    *,
    nonce: str | None = None,
    at: datetime | None = None,
    domains: Sequence[str] = ALL_DOMAINS,
    intermediates: Sequence[x509.Certificate] = (),
    fetch: Fetch | None = None,
) -> Verified:
    at = at or datetime.now(UTC)
    try:
        signed = parse_signed_data(decode(text))
        signer = signed.signer()
    except CmsError as exc:
        raise VerificationError("pkcs7", str(exc)) from exc
    try:
        verify_signature(signed, signer)
    except CmsError as exc:
        raise VerificationError("signature", str(exc)) from exc
    pool = intermediates_for(signed, signer, intermediates, fetch or _no_fetch)
    chain = build_chain(signer, pool, roots, at)
    check_san(signer, [d.lower() for d in domains])
    document = check_content(signed.content, nonce, at)
    return Verified(document, signed.content, signer, chain)


def _no_fetch(url: str) -> bytes:
    raise OSError("fetching is turned off")


@dataclass
class Examined:
    """What `examine` found: the signed document and the signer when they could be read,
    the chain when it was built, and the failed step (none: the document is valid)."""

    document: dict[str, object] | None
    signer: x509.Certificate | None
    chain: list[x509.Certificate]
    errors: list[str]


def examine(
    text: str | bytes,
    roots: Sequence[x509.Certificate],
    *,
    nonce: str | None = None,
    at: datetime | None = None,
    intermediates: Sequence[x509.Certificate] = (),
) -> Examined:
    """`verify_document` (no fetching: the intermediates are given), reporting a failed
    step instead of raising it, with what could still be read of the document."""
    try:
        verified = verify_document(
            text, roots, nonce=nonce, at=at, intermediates=intermediates, fetch=None
        )
    except VerificationError as exc:
        document, signer = _readable(text)
        return Examined(document, signer, [], [f"{exc.step}: {exc.message}"])
    return Examined(verified.document, verified.signer, verified.chain, [])


def _readable(text: str | bytes) -> tuple[dict[str, object] | None, x509.Certificate | None]:
    """The signed JSON and the signer of a document that did not verify, where readable."""
    try:
        signed = parse_signed_data(decode(text))
    except (VerificationError, CmsError):
        return None, None
    try:
        signer: x509.Certificate | None = signed.signer()
    except CmsError:
        signer = None
    try:
        document = json.loads(signed.content)
    except ValueError:
        return None, signer
    return (document if isinstance(document, dict) else None), signer
