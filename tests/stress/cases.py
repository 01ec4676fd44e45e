"""Generated requests for the fuzzer: well-formed requests over the whole metadata API
surface with odd parts, HTTP framing games, and raw or mutated bytes. Each case is the
bytes one connection sends and how many requests they hold (for counting)."""

from __future__ import annotations

import random
from collections.abc import Callable

API = ["2017-03-01", "2018-02-01", "2020-09-01", "2021-02-01", "2023-07-01", "2025-04-07"]
PATHS = [
    "/metadata/instance",
    "/metadata/instance/compute",
    "/metadata/instance/compute/name",
    "/metadata/instance/compute/tagsList/0/name",
    "/metadata/instance/compute/tagsList/99999999999999999999",
    "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress",
    "/metadata/instance/network/interface/-1",
    "/metadata/attested/document",
    "/metadata/identity/oauth2/token",
    "/metadata/identity/info",
    "/metadata/identity/getplatformmetadata",
    "/metadata/scheduledevents",
    "/metadata/loadbalancer",
    "/metadata/versions",
    "/metadata/",
    "/metadata",
    "/",
    "*",
    "/vms",
    "/events",
    "/metrics",
]
METHODS = [*["GET"] * 8, "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE"]
ODD = ["%00", "%ff", "..", "%2e%2e", "//", "é", "\t", "a" * 300, "%", "?", "#", ";x", "~"]
QUERY_KEYS = [
    "api-version",
    "format",
    "nonce",
    "resource",
    "client_id",
    "object_id",
    "msi_res_id",
    "bypass_cache",
    "x",
    "",
]
QUERY_VALUES = [
    *API,
    "json",
    "text",
    "xml",
    "",
    "1234567890",
    "%ff",
    "https://vault.azure.net",
    "true",
    "9" * 400,
    "2021-13-45",
    "latest",
]
HEADERS = [
    b"Metadata: true\r\n",
    b"Metadata: true\r\n",
    b"Metadata: TRUE\r\n",
    b"Metadata: false\r\n",
    b"Metadata: true\r\nMetadata: false\r\n",
    b"X-Forwarded-For: 10.0.0.9\r\n",
    b"Metadata: \xff\xfe\r\n",
    b"Content-Type: application/json\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Proxy-Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
    b"X-Identity-Header: x\r\n",
    b"Authorization: Bearer x\r\n",
    b"Host: \r\n",
    b"Accept-Encoding: gzip\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
]
BODIES = [
    b"",
    b"{}",
    b"[]",
    b"null",
    b'{"StartRequests": [{"EventId": "x"}]}',
    b'{"StartRequests": []}',
    b'{"StartRequests": [{"EventId": 5}]}',
    b"[1",
    b"\x00\xff" * 9,
    b'{"a":' * 50,
    b"x" * 5000,
]
JUNK = [
    b"\r\n",
    b"\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET / HTTP/1.1\r\n",
    b"G",
    b" ",
    b"\x00",
]


def _path(rng: random.Random) -> str:
    path = rng.choice(PATHS)
    if rng.random() < 0.25:
        parts = path.split("/")
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(ODD))
        path = "/".join(parts)
    if rng.random() < 0.05:
        path = "http://169.254.169.254" + path
    return path


def _query(rng: random.Random) -> str:
    pairs = [("api-version", rng.choice(API))] if rng.random() < 0.8 else []
    for _ in range(rng.choice((0, 0, 0, 0, 1, 2, 3, 40))):
        pairs.append((rng.choice(QUERY_KEYS), rng.choice(QUERY_VALUES)))
    rng.shuffle(pairs)
    return "?" + "&".join(f"{k}={v}" if rng.random() < 0.95 else k for k, v in pairs)


def _framed_body(rng: random.Random, body: bytes) -> bytes:
    """Headers that frame `body` (right or wrong) followed by the body."""
    style = rng.randrange(16)
    if style == 0:
        return b"\r\n" + body  # no length: a body read as the next request
    if style == 1:
        size = b"%x" % len(body)
        chunks = (size + b"\r\n" + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        return b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    if style == 2:  # chunked, badly
        return b"Transfer-Encoding: chunked\r\n\r\n" + rng.choice(
            [
                b"zz\r\n",
                b"ffffffffffffffffff\r\n",
                b"5\r\nab\r\n0\r\n\r\n",
                b"-1\r\n",
                b"3;x=y\r\nabc\r\n0\r\n\r\n",
            ]
        )
    if style == 3:
        return (
            b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body) + 1) + body
        )
    if style == 4:
        return (
            rng.choice(
                [
                    b"Content-Length: -1\r\n\r\n",
                    b"Content-Length: x\r\n\r\n",
                    b"Content-Length: 99999999999999999999\r\n\r\n",
                    b"Content-Length: 70000\r\n\r\n",
                    b"Content-Length: 1 0\r\n\r\n",
                ]
            )
            + body
        )
    if style == 5:
        return (b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)) + body
    if style == 6:  # a length shorter than the body: the rest is the next "request"
        return b"Content-Length: %d\r\n\r\n" % max(0, len(body) - 3) + body
    if not body or rng.random() < 0.5:
        return b"\r\n"  # the usual request: no body at all
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def api_request(rng: random.Random) -> bytes:
    method = rng.choice(METHODS)
    version = rng.choice(["1.1"] * 12 + ["1.0", "0.9", "2.0", "1.2"])
    line = f"{method} {_path(rng)}{_query(rng)} HTTP/{version}\r\n".encode("utf-8", "replace")
    headers = b"Host: 169.254.169.254\r\n" + (b"Metadata: true\r\n" if rng.random() < 0.8 else b"")
    headers += b"".join(rng.choice(HEADERS) for _ in range(rng.choice((0, 0, 0, 1, 2))))
    if rng.random() < 0.02:
        headers += b"X-Big: " + b"a" * rng.choice((100, 10_000, 17_000)) + b"\r\n"
    if rng.random() < 0.02:
        headers += b"".join(b"X-%d: y\r\n" % n for n in range(rng.choice((50, 120))))
    return line + headers + _framed_body(rng, rng.choice(BODIES))


def pipelined(rng: random.Random) -> tuple[bytes, int]:
    count = rng.randint(2, 6)
    stream = b"".join(api_request(rng) for _ in range(count))
    if rng.random() < 0.5:
        stream += rng.choice(JUNK)
    return stream, count


def mutated(rng: random.Random) -> bytes:
    data = bytearray(api_request(rng))
    for _ in range(rng.randint(1, 4)):
        op, at = rng.randrange(4), rng.randrange(len(data) + 1)
        if op == 0 and at < len(data):
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2:
            del data[at : at + rng.randint(1, 16)]
        else:
            data[at:at] = rng.choice(JUNK)
    return bytes(data)


def raw(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))


KINDS: list[tuple[str, float, Callable[[random.Random], tuple[bytes, int]]]] = [
    ("api", 0.55, lambda rng: (api_request(rng), 1)),
    ("pipelined", 0.15, pipelined),
    ("mutated", 0.2, lambda rng: (mutated(rng), 1)),
    ("raw", 0.1, lambda rng: (raw(rng), 1)),
]


def case(rng: random.Random) -> tuple[str, bytes, int]:
    """(kind, bytes, requests) of one connection's worth of generated traffic."""
    pick = rng.random()
    for kind, weight, make in KINDS:
        if pick < weight:
            data, count = make(rng)
            return kind, data, count
        pick -= weight
    data, count = KINDS[0][2](rng)
    return "api", data, count
