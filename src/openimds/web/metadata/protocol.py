"""The metadata listener: a lean HTTP/1.1 server on asyncio (uvloop where present).

Why not a framework: the benchmark in docs/performance.md shows frameworks reach under
half of nginx on the instance GET, while a protocol that hands precomputed bytes to the
transport matches it. httptools (llhttp) does the parsing; this module adds keep-alive,
pipelining (requests are answered in order, synchronously), size limits, idle and
request-head timeouts, connection caps, lingering close and hooks' delays.

What a complete request gets is the shared server's to say (`MetadataServer.answer` in
state.py: caller, hooks, the byte cache, budgets, the core); the connection writes it.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

import httptools

from openimds.core.errors import ImdsError, error_response
from openimds.core.http import Response
from openimds.web.metadata.deferred import DeferredTransport
from openimds.web.metadata.hooks import Takeover
from openimds.web.metadata.state import (
    IDLE_TIMEOUT,
    METADATA,
    NO_METADATA,
    NOTED_HEADERS,
    UNCACHEABLE,
    ConnectionLimits,
    MetadataServer,
)

__all__ = ["IDLE_TIMEOUT", "ConnectionLimits", "MetadataProtocol", "MetadataServer"]

MAX_URL = 8 * 1024
MAX_HEADERS_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_BODY = 64 * 1024
# httptools buffers a header line in full before calling on_header, so the bytes of an
# unfinished request head are counted as they arrive (docs/http.md, limits).
MAX_HEAD_BYTES = MAX_URL + MAX_HEADERS_BYTES + 1024
# A client that pipelines requests but never reads its answers: past this much unsent
# output the connection is dropped (reading is already paused at the transport's mark).
MAX_PENDING_OUTPUT = 4 * 1024 * 1024
MAX_LINGER_BYTES = 256 * 1024  # discarded after the last answer before hanging up
TIMED_OUT = "Request timeout. The request head did not arrive in time"


class MetadataProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: MetadataServer) -> None:
        self.server = server
        self.noted = server.noted_headers
        self.trusted = False  # the peer is the signed proxy's (asked once per connection)
        self.proxy_headers: list[tuple[bytes, bytes]] | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.header_state = NO_METADATA
        self.metadata_seen = False
        self.connection_header = False
        self.body_too_large = False
        self.expect_continue = False
        self.body: bytearray | None = None
        self.idle = 0
        self.head_age = 0  # ticks since the current request head began
        self.in_head = False  # between the start of a request and the end of its headers
        self.lingering = 0  # ticks since the last answer of a closing connection went out
        self.lingered = 0  # bytes discarded since then
        self.head_began = False  # a request started in the chunk being parsed
        self.answered = False
        self.head_bytes = 0
        self.closing = False

    # -- connection lifecycle -------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else "local"
        if not self.server.admit(self.peer):
            # Over a cap: the cheapest refusal is a reset before anything is read; the
            # connections already open go on being served (docs/http.md, limits).
            self.closing = True
            cast(asyncio.Transport, transport).abort()
            return
        self.transport = cast(asyncio.Transport, transport)
        if self.server.proxy is not None:
            self.trusted = self.server.proxy.trusts(self.peer)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server.connections.discard(self)
            self.server.release(self.peer)
        self.transport = None

    def idle_tick(self) -> None:
        if self.lingering:
            self.lingering += 1
            if self.lingering > 2 and self.transport is not None:
                self.transport.close()
            return
        if self.in_head:
            # A head must arrive whole within head_timeout (whole ticks since its first
            # byte), however steadily it trickles in: slow clients cannot hold a
            # connection for the idle timeout a line at a time.
            self.head_age += 1
            if self.head_age > self.server.head_ticks:
                self.server.metrics.head_timeouts += 1
                self.reject(408, TIMED_OUT, route="timeout")
                return
        # Whole seconds since the last complete request (closed between idle_timeout and
        # idle_timeout + 1 s); a client trickling a request that never ends goes too.
        self.idle += 1
        if self.idle > self.server.idle_ticks and self.transport is not None:
            self.closing = True
            self.transport.close()

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its requests too.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            # After the last answer input is discarded, a bounded amount (see finish()).
            self.lingered += len(data)
            if self.lingered > MAX_LINGER_BYTES and self.transport is not None:
                self.transport.close()
            return
        self.head_began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request itself was answered (an Upgrade header is ignored, RFC 9110
            # 7.8); the parser stops there, so the connection ends.
            if not self.answered or self.transport is None:
                self.reject(400, "Bad request. Protocol upgrades are not supported")
            else:
                self.finish(self.transport)
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised; the size limits surface here.
            cause = exc.__context__
            if isinstance(cause, _TooLarge):
                self.reject(cause.status, cause.message)
            else:
                self.reject(400, "Bad request. Malformed HTTP request")
        if self.in_head and not self.closing:  # a chunk of complete requests skips this
            self.count_head(data)

    def count_head(self, data: bytes) -> None:
        """Count the bytes of the head still unfinished after `data`: all of a chunk that
        did not start it, else the part from its request line on (pipelined requests
        before it are not counted)."""
        if not self.head_began:
            self.head_bytes += len(data)
        elif self.url:
            # httptools gives no offsets; the request line is the last `METHOD URL` in the
            # chunk (a header value repeating it could only make the count smaller).
            start = data.rfind(b"%s %s" % (self.parser.get_method(), self.url))
            self.head_bytes = len(data) - start if start >= 0 else 0
        if self.head_bytes > MAX_HEAD_BYTES:
            self.reject(431, _TooLarge.HEADERS)

    # -- parser callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.header_state = NO_METADATA
        self.metadata_seen = False
        self.connection_header = False
        self.body_too_large = False
        self.expect_continue = False
        self.body = None
        self.proxy_headers = None
        self.in_head = True
        self.head_age = 0
        self.head_began = True
        self.head_bytes = 0
        self.answered = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL:
            raise _TooLarge(414, "Bad request. The request URL is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADERS_BYTES or len(self.headers) >= MAX_HEADERS:
            raise _TooLarge(431, _TooLarge.HEADERS)
        self.headers.append((name, value))
        lname = name.lower()
        if lname in self.noted:
            self._note(lname, value)

    def _note(self, lname: bytes, value: bytes) -> None:
        """Header facts gathered as headers arrive, so no second pass over them.
        The cache key holds the only header fact a cacheable answer depends on: Metadata
        valid or not. X-Forwarded-For, or a Metadata header given twice (the core reads
        the first), bypasses the cache. A signed proxy's headers are kept for resolving
        the caller, which picks the VM's own cache."""
        if lname == b"metadata":
            if self.metadata_seen:
                self.header_state = UNCACHEABLE
            elif self.header_state != UNCACHEABLE:
                valid = value.strip().lower() == b"true"
                self.header_state = METADATA if valid else NO_METADATA
            self.metadata_seen = True
        elif lname == b"x-forwarded-for":
            self.header_state = UNCACHEABLE
        elif lname == b"content-length":
            length = value.strip()
            if length.isdigit() and int(length) > MAX_BODY:
                self.body_too_large = True
        elif lname == b"expect":
            self.expect_continue = value.strip().lower() == b"100-continue"
        elif lname not in NOTED_HEADERS:  # a signed proxy's header (noted only with one)
            if self.proxy_headers is None:
                self.proxy_headers = []
            self.proxy_headers.append((lname, value))
        else:
            self.connection_header = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        # Refuse a declared oversized body before any of it is read.
        if self.body_too_large:
            raise _TooLarge(413, _TooLarge.BODY)
        # Clients that wait for it before sending a body (.NET's HttpWebRequest, so
        # PowerShell 5.1 POSTing to scheduled events) get it at once (RFC 9110 10.1.1).
        transport = self.transport
        if self.expect_continue and transport and self.parser.get_http_version() == "1.1":
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.body is None:
            self.body = bytearray()
        self.body += body
        if len(self.body) > MAX_BODY:
            raise _TooLarge(413, _TooLarge.BODY)

    def on_message_complete(self) -> None:
        if self.closing:
            return  # pipelined after a request that closes the connection: not answered
        self.idle = 0
        self.answered = True
        started = time.perf_counter()
        # HTTP/1.0 peers are answered and closed: they get no keep-alive bookkeeping.
        # Without a Connection (or Proxy-Connection) header llhttp keeps alive only
        # HTTP/1.1, so the version string (built on every call) is needed only then.
        parser = self.parser
        keep_alive = parser.should_keep_alive() and (
            not self.connection_header or parser.get_http_version() == "1.1"
        )
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii", "replace")
        server = self.server
        url, headers, peer = self.url, self.headers, self.peer
        cached, vm_name, verdict = server.answer(
            method,
            url,
            self.header_state,
            headers,
            self.body,
            peer,
            self.trusted,
            self.proxy_headers,
            keep_alive,
        )
        if verdict is not None:  # a hook took part: it may delay, hang up or hold
            if verdict.delay > 0:
                self._defer(verdict.delay)
            if cached is None:
                self._unanswered(verdict, method, vm_name, started)
                return
        transport = self.transport
        if transport is None or cached is None:
            return
        if method == "HEAD":  # the answer (a 405) must not carry a body after a HEAD
            transport.write(b"".join((cached.head, server.date, b"\r\n\r\n")))
        else:
            transport.write(b"".join((cached.head, server.date, cached.tail)))
        if not keep_alive:
            self.finish(transport)
        elif transport.get_write_buffer_size() > MAX_PENDING_OUTPUT:
            self.closing = True
            transport.abort()
        elapsed = time.perf_counter() - started
        server.record(method, url, headers, peer, cached.status, cached.route, vm_name, elapsed)
        if server.on_answer is not None:
            server.on_answer(cached.route, cached.status, vm_name)

    def _unanswered(self, verdict: Takeover, method: str, vm_name: str, started: float) -> None:
        """A hook's verdict without an answer: hang up, or hold the connection open and
        read nothing more (the idle timeout, or the client giving up, ends it)."""
        transport = self.transport
        if transport is None:
            return
        elapsed = time.perf_counter() - started
        self.closing = True
        if verdict.hold:
            transport.pause_reading()
        else:
            transport.close()
        route = f"hook:{verdict.rule}"
        self.server.record(method, self.url, self.headers, self.peer, 0, route, vm_name, elapsed)

    # -- deferral ---------------------------------------------------------------------
    def _defer(self, delay: float) -> None:
        """Everything written from now on (this answer, answers to requests pipelined
        behind it, a close) goes out `delay` seconds from now, in order; reading pauses
        meanwhile. Done by standing a recording transport in for the real one, so the
        normal path needs no check of its own."""
        real = self.transport
        if real is None or isinstance(real, DeferredTransport):
            return  # delays do not stack: this answer waits with the one ahead of it
        deferred = DeferredTransport(real)
        self.transport = deferred
        real.pause_reading()
        asyncio.get_running_loop().call_later(delay, self._release, deferred)

    def _release(self, deferred: DeferredTransport) -> None:
        if self.transport is not deferred:
            return  # the client went away meanwhile
        self.transport = deferred.real
        deferred.replay()
        if not self.closing and not deferred.real.is_closing():
            deferred.real.resume_reading()

    def finish(self, transport: asyncio.Transport) -> None:
        """The last answer is written: send FIN but keep reading (and discarding) for a
        second or two, so bytes the client already sent cannot make the kernel reset the
        connection and destroy the answer before it is read (RFC 9112 9.6, lingering close)."""
        self.closing = True
        if transport.can_write_eof():
            transport.write_eof()
            self.lingering = 1
        else:
            transport.close()

    def reject(self, status: int, message: str, route: str = "malformed") -> None:
        """A request we cannot parse: answer once in Azure's error shape and hang up."""
        if self.transport is None or self.closing:
            return
        server = self.server
        body = error_response(ImdsError(message)).body
        cached = server.encode(Response(status, body), route, close=True)
        self.transport.write(b"".join((cached.head, server.date, cached.tail)))
        self.finish(self.transport)
        # Counted and logged like any request; the method is known once the URL started.
        method = self.parser.get_method().decode("ascii", "replace") if self.url else "-"
        server.record(method, self.url[:200], None, self.peer, status, route, "-", 0.0)


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


class _TooLarge(Exception):
    HEADERS = "Bad request. Request headers are too large"
    BODY = "Bad request. The request body is too large"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
