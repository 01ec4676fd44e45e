from __future__ import annotations

import pytest

from openimds.crypto.ca import CertificateAuthority
from openimds.crypto.pkcs7 import Pkcs7Signer
from openimds.crypto.signing_keys import SigningKey, generate
from tests.support.pkcs7 import CONTENT, backdated_ca


@pytest.fixture(scope="session")
def spare_keys() -> list[SigningKey]:
    """RSA generation is slow-ish: make the keys the tests rotate to once."""
    return [generate(1_800_000_000.0 + i) for i in range(3)]


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    return backdated_ca()


@pytest.fixture(scope="session")
def der(ca: CertificateAuthority) -> bytes:
    """CONTENT signed by `ca` as the attested endpoint signs it."""
    return Pkcs7Signer(ca).sign(CONTENT, "AzurePublicCloud")
