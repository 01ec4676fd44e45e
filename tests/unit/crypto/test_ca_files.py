"""Operator-supplied CA files: each wrong file is named in one clear CaError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from openimds.crypto.ca import CaError, issue_root, load_pair, pem


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
