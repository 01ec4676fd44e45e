"""Bodies nested deeper than the JSON parser recurses are errors, not 500s."""

from __future__ import annotations

import pytest

from openimds.core.scheduled_events_api import MalformedStartRequests, parse_start_requests
from openimds.crypto.verify import VerificationError, decode

DEEP = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize("body", [DEEP, b'{"StartRequests": ' + DEEP + b"}"])
def test_start_requests_nested_too_deeply(body: bytes) -> None:
    with pytest.raises(MalformedStartRequests, match="nested too deeply") as caught:
        parse_start_requests(body)
    assert caught.value.status == 400


def test_a_deeply_nested_document_does_not_decode() -> None:
    with pytest.raises(VerificationError) as caught:
        decode(b'{"signature": ' + DEEP + b"}")
    assert caught.value.step == "decode"
