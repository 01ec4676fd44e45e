"""Attested data's certificate authority: root -> intermediate -> one signing certificate
per cloud, named the way Azure names them in each cloud (docs/attested.md).

Created on first start and kept in the state store (records of kind `attested_ca`), so
a root a user exported keeps verifying across restarts. A user may instead bring a CA
(openimds then issues the intermediate under it) or a finished signing certificate.
Signing certificates are re-issued when their names, issuer or AIA URL no longer match
the configuration, or when they come within RENEW_BEFORE of expiry.

The extensions follow the Web PKI profile (so strict verifiers accept the chain), and
the signing certificate lists emailProtection next to the TLS usages so S/MIME tools
such as `openssl cms -verify` accept it without `-purpose any` (docs/attested.md).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from openimds.config.model import AttestedSettings
from openimds.store import Store, decoding

Cloud = Literal["public", "usgov", "china", "germany"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

KIND: Final[str] = "attested_ca"
CLOUD_DOMAINS: Final[dict[Cloud, str]] = {
    "public": "metadata.azure.com",
    "usgov": "metadata.azure.us",
    "china": "metadata.azure.cn",
    "germany": "metadata.microsoftazure.de",
}
# compute.azEnvironment values and their cloud; anything else signs as the public cloud.
AZ_ENVIRONMENTS: Final[dict[str, Cloud]] = {
    "azurepubliccloud": "public",
    "azureusgovernmentcloud": "usgov",
    "azureusgovernment": "usgov",
    "azurechinacloud": "china",
    "azuregermancloud": "germany",
    "azuregermanycloud": "germany",
}
ROOT_LIFETIME: Final = timedelta(days=3650)
INTERMEDIATE_LIFETIME: Final = timedelta(days=1825)
SIGNING_LIFETIME: Final = timedelta(days=365)
RENEW_BEFORE: Final = timedelta(days=30)
BACKDATE: Final = timedelta(hours=1)  # tolerate clocks a little behind ours


class CaError(Exception):
    """CA material that cannot be loaded or used, worded for the user."""


def cloud_of(az_environment: str) -> Cloud:
    return AZ_ENVIRONMENTS.get(az_environment.strip().lower(), "public")


@dataclass(frozen=True, slots=True)
class KeyPair:
    cert: x509.Certificate
    key: SigningKey

    def to_json(self, **extra: object) -> str:
        key_pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return json.dumps({"cert": pem(self.cert), "key": key_pem.decode(), **extra})

    @classmethod
    def from_json(cls, text: str, key: str) -> tuple[KeyPair, dict[str, object]]:
        """The pair stored under `key`; CorruptRecord when it cannot be read."""
        with decoding(KIND, key):
            data = json.loads(text)
            try:
                cert = x509.load_pem_x509_certificate(data["cert"].encode())
            except ValueError as exc:
                raise ValueError(f"not a PEM certificate ({exc})") from exc
            try:
                private = _key(data["key"])
            except CaError as exc:
                raise ValueError(str(exc).removeprefix("state store: ")) from exc
        return cls(cert, private), data


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _key(text: str, where: str = "state store") -> SigningKey:
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise CaError(f"{where}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CaError(f"{where}: only RSA and EC keys can sign")
    return key


def load_pair(cert_file: str, key_file: str) -> KeyPair:
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        key = _key(Path(key_file).read_text(), key_file)
    except OSError as exc:
        raise CaError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # the key is read as text; a DER key is binary
        raise CaError(f"{key_file}: not an unencrypted PEM private key (not text)") from exc
    except ValueError as exc:
        raise CaError(f"{cert_file}: not a PEM certificate ({exc})") from exc
    if cert.public_key() != key.public_key():
        raise CaError(f"{key_file} is not the key of {cert_file}")
    return KeyPair(cert, key)


def load_chain(chain_file: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(Path(chain_file).read_bytes())
    except OSError as exc:
        raise CaError(f"cannot read {chain_file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CaError(f"{chain_file}: not PEM certificates ({exc})") from exc


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openimds"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: KeyPair | None, key: SigningKey, now: datetime, life: timedelta
) -> x509.CertificateBuilder:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + life)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return builder


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(True, False, False, False, False, True, True, False, False)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue_root(now: datetime) -> KeyPair:
    key = new_key()
    # A tag in the name keeps two installations' roots apart in one trust store.
    subject = _name(f"openimds Attested Data Root CA {secrets.token_hex(4)}")
    cert = (
        _builder(subject, None, key, now, ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def issue_intermediate(root: KeyPair, now: datetime) -> KeyPair:
    key = new_key()
    subject = _name(f"openimds Attested Data Issuing CA {secrets.token_hex(4)}")
    cert = (
        _builder(subject, root, key, now, INTERMEDIATE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(root.key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def issue_signing(
    issuer: KeyPair, names: Sequence[str], aia_url: str | None, now: datetime
) -> KeyPair:
    key = new_key()
    common = names[0].removeprefix("*.")
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    eku = x509.ExtendedKeyUsage(
        [
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ]
    )
    builder = (
        _builder(_name(common), issuer, key, now, SIGNING_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(eku, critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
    )
    if aia_url is not None:
        # Clients fetch the intermediate from the AIA "CA Issuers" URI.
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_url)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), False)
    return KeyPair(builder.sign(issuer.key, hashes.SHA256()), key)


def signing_names(settings: AttestedSettings, cloud: Cloud) -> list[str]:
    if settings.san_dns_names:
        return list(settings.san_dns_names)
    domain = CLOUD_DOMAINS[cloud]
    return [domain, f"*.{domain}"]


class CertificateAuthority:
    """The CA material of one server. `signing(cloud)` is what the signer calls per
    request: a dictionary lookup, except when a certificate has to be (re)issued.

    Files are read in the constructor, so a bad path stops the server at start. Keys are
    generated on first use, or ahead of it by `prepare` on a worker thread (key
    generation releases the GIL), which keeps it off the server's start-up path."""

    def __init__(
        self,
        store: Store,
        settings: AttestedSettings,
        aia_url: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.aia_url = aia_url
        self.clock = clock
        self._lock = threading.Lock()
        self._loaded = False
        self._signing: dict[Cloud, KeyPair] = {}
        self._fixed: KeyPair | None = None
        self._user_ca: KeyPair | None = None
        self._root: x509.Certificate | None = None
        self._intermediate: KeyPair | None = None
        self._chain: list[x509.Certificate] = []  # intermediates of a user's signing cert
        if settings.signing_cert_file is not None and settings.signing_key_file is not None:
            self._load_signing_files(settings)
        elif settings.ca_cert_file is not None and settings.ca_key_file is not None:
            self._user_ca = load_pair(settings.ca_cert_file, settings.ca_key_file)

    def check_stored(self) -> None:
        """Decode what the store holds (fast: no key is made), so a damaged record stops
        the start as a CorruptRecord instead of failing the first attested request."""
        for key, value in self.store.list_records(KIND):
            KeyPair.from_json(value, key)

    def prepare(self, clouds: Iterable[Cloud]) -> None:
        """Load or create everything the given clouds need."""
        for cloud in clouds:
            self.signing(cloud)
        self._ensure()

    @property
    def root(self) -> x509.Certificate | None:
        self._ensure()
        return self._root

    @property
    def intermediate(self) -> KeyPair | None:
        self._ensure()
        return self._intermediate

    @property
    def intermediates(self) -> list[x509.Certificate]:
        self._ensure()
        if self._intermediate is not None:
            return [self._intermediate.cert]
        return self._chain

    def forget(self, key: str) -> None:
        """Drop what is held of a record another node changed in a shared store (its
        change feed, `key` "*" after a gap): the next use loads the stored one, so every
        node signs with the certificate the store holds instead of re-issuing over it."""
        with self._lock:
            if key.startswith("signing/"):
                for cloud in [c for c in self._signing if f"signing/{c}" == key]:
                    del self._signing[cloud]
                return
            if self._fixed is None:  # files: nothing of them lives in the store
                self._loaded = False
                self._signing.clear()

    def _ensure(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                if self._fixed is None:
                    self._load_issuers()
                self._loaded = True

    def _load_signing_files(self, settings: AttestedSettings) -> None:
        assert settings.signing_cert_file is not None and settings.signing_key_file is not None
        self._fixed = load_pair(settings.signing_cert_file, settings.signing_key_file)
        chain = load_chain(settings.chain_file) if settings.chain_file else []
        roots = [c for c in chain if _self_signed(c)]
        self._root = roots[0] if roots else None
        self._chain = [c for c in chain if not _self_signed(c)]

    def _load_issuers(self) -> None:
        now = self.clock()
        root = self._user_ca
        if root is None:
            stored = self.store.get_record(KIND, "root")
            if stored is None:
                # The first writer wins, so nodes sharing one store agree on the root.
                stored = self.store.put_record_once(KIND, "root", issue_root(now).to_json())
            root = KeyPair.from_json(stored, "root")[0]
        self._root = root.cert
        self._intermediate = self._load_intermediate(root, now)

    def _load_intermediate(self, root: KeyPair, now: datetime) -> KeyPair:
        stored = self.store.get_record(KIND, "intermediate")
        if stored is not None:
            pair, data = KeyPair.from_json(stored, "intermediate")
            if data.get("issuer") == fingerprint(root.cert) and pair.cert.not_valid_after_utc > (
                now + RENEW_BEFORE
            ):
                return pair
        fresh = issue_intermediate(root, now).to_json(issuer=fingerprint(root.cert))
        if stored is None:
            stored = self.store.put_record_once(KIND, "intermediate", fresh)
            return KeyPair.from_json(stored, "intermediate")[0]
        self.store.put_record(KIND, "intermediate", fresh)
        return KeyPair.from_json(fresh, "intermediate")[0]

    def signing(self, cloud: Cloud) -> KeyPair:
        if self._fixed is not None:
            return self._fixed
        pair = self._signing.get(cloud)
        now = self.clock()
        if pair is not None and pair.cert.not_valid_after_utc - RENEW_BEFORE > now:
            return pair
        self._ensure()
        with self._lock:
            pair = self._load_signing(cloud, now)
            self._signing[cloud] = pair
            return pair

    def _load_signing(self, cloud: Cloud, now: datetime) -> KeyPair:
        issuer = self._intermediate
        assert issuer is not None
        profile = {
            "issuer": fingerprint(issuer.cert),
            "names": signing_names(self.settings, cloud),
            "aia": self.aia_url,
        }
        key = f"signing/{cloud}"
        stored = self.store.get_record(KIND, key)
        if stored is not None:
            pair, data = KeyPair.from_json(stored, key)
            fresh_enough = pair.cert.not_valid_after_utc - RENEW_BEFORE > now
            if fresh_enough and data.get("profile") == profile:
                return pair
        names = profile["names"]
        assert isinstance(names, list)
        pair = issue_signing(issuer, names, self.aia_url, now)
        self.store.put_record(KIND, key, pair.to_json(profile=profile))
        return pair
