"""An attested document signed by a CA backdated to 2018, for the crypto tests: the
moment `AT` lies inside its certificates' validity and the document's six hours."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from cryptography import x509

from openimds.config.model import AttestedSettings
from openimds.crypto.ca import CertificateAuthority
from openimds.store.memory import MemoryStore

AIA = "http://127.0.0.1:8081/attested/intermediate.crt"
CONTENT = (
    b'{"nonce":"abc123","plan":{"name":"","product":"","publisher":""},'
    b'"timeStamp":{"createdOn":"11/28/18 00:16:17 -0000","expiresOn":"11/28/18 06:16:17 -0000"},'
    b'"vmId":"v"}'
)
AT = datetime(2018, 11, 28, 1, 0, tzinfo=UTC)


def backdated_ca() -> CertificateAuthority:
    """Certificates backdated so that AT (2018) lies inside their validity."""
    return CertificateAuthority(
        MemoryStore(), AttestedSettings(), AIA, clock=lambda: datetime(2018, 11, 1, tzinfo=UTC)
    )


def answer(der: bytes) -> str:
    """The endpoint's JSON answer around a PKCS#7 signature."""
    return json.dumps({"encoding": "pkcs7", "signature": base64.b64encode(der).decode()})


def roots(ca: CertificateAuthority) -> list[x509.Certificate]:
    assert ca.root is not None
    return [ca.root]
