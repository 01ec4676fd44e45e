"""Whatever bytes arrive, in whatever pieces: the listener answers in well-formed HTTP or
hangs up, never raises, never answers 500, and splitting never changes the answers."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from openimds.inventory.live import LiveInventory
from openimds.web.metadata.protocol import MetadataServer
from tests.support.imds import vm_spec
from tests.support.listener import FakeTransport, connect, metadata_server

STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) [A-Za-z -]+\r\n")
FLEET = LiveInventory([vm_spec("fuzz-vm")])

REQUESTS = [
    b"GET /metadata/instance?api-version=2021-02-01 HTTP/1.1\r\nMetadata: true\r\n\r\n",
    b"GET /metadata/instance/compute/name?api-version=2021-02-01&format=text HTTP/1.1\r\n"
    b"Metadata: True\r\n\r\n",
    b"GET /metadata/versions HTTP/1.1\r\n\r\n",
    b"POST /metadata/instance HTTP/1.1\r\nContent-Length: 3\r\nMetadata: true\r\n\r\nabc",
    b"HEAD /metadata/instance HTTP/1.1\r\n\r\n",
    b"GET /metadata/nope?x=1&x=2 HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    b"POST /metadata/instance HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
]


def _run(chunks: list[bytes], server: MetadataServer | None = None) -> FakeTransport:
    proto, transport = connect(server or metadata_server(FLEET))
    for chunk in chunks:
        proto.data_received(chunk)
    proto.connection_lost(None)
    return transport


def _statuses(written: bytes) -> list[int]:
    return [int(m.group(1)) for m in STATUS.finditer(written)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_crash_or_500(chunks: list[bytes]) -> None:
    transport = _run(chunks)
    if transport.written:
        assert transport.written.startswith(b"HTTP/1.1 ")
    statuses = _statuses(transport.written)
    assert all(status < 500 for status in statuses)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(REQUESTS), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    st.binary(max_size=40),
)
def test_splitting_never_changes_the_answers(
    requests: list[bytes], cuts: list[int], tail: bytes
) -> None:
    stream = b"".join(requests) + tail
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    server = metadata_server(FLEET)
    whole = _run([stream], server)
    split = _run(pieces, server)
    date = re.compile(rb"Date: [^\r]*\r\n")
    assert date.sub(b"", split.written) == date.sub(b"", whole.written)
    # Every complete request before the tail got exactly one answer, in order.
    assert len(_statuses(whole.written)) >= len(requests)
    assert all(s < 500 for s in _statuses(whole.written))
