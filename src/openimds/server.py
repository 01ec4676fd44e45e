"""Running the listeners in one event loop: metadata (lean protocol), the features' extra
listeners (token sources, same protocol) and admin (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette

from openimds.config import ListenAddress
from openimds.config.admin_token import remove_token_file, write_token_file
from openimds.config.listen import WILDCARDS
from openimds.inventory.proxy import ProxyCallers
from openimds.netsetup import IMDS_HOST, WIRESERVER_HOST
from openimds.runtime import Listener, Runtime
from openimds.store import StoreError
from openimds.store.follower import report
from openimds.web.access_log import AccessLog
from openimds.web.admin_app import build_admin_app
from openimds.web.metadata.fdlimit import connection_budget
from openimds.web.metadata.protocol import MetadataProtocol
from openimds.web.metadata.state import ConnectionLimits, MetadataServer

log = logging.getLogger("openimds")
_VERBOSE = ("debug", "info")
DUAL_STACK = "::"


def access_log(runtime: Runtime) -> AccessLog:
    settings = runtime.config.server
    # Access lines are info-level events: --log-level warning or error silences them.
    return AccessLog(enabled=settings.access_log and settings.log_level in _VERBOSE)


def metadata_server(
    runtime: Runtime, log: AccessLog | None = None, limits: ConnectionLimits | None = None
) -> MetadataServer:
    settings = runtime.config.server
    limiters = runtime.limiters
    return MetadataServer(
        runtime.dispatcher(),
        runtime.inventory,
        limiters,
        server_header=settings.server_header,
        access_log=log or access_log(runtime),
        metrics=runtime.metrics,
        limits=limits or connection_limits(runtime),
        hooks=runtime.hooks,
        proxy=None if runtime.proxy is None else ProxyCallers(runtime.proxy, runtime.inventory),
        request_ring=runtime.request_ring,
        clock=runtime.clock.now,
    )


def connection_limits(runtime: Runtime, max_connections: int | None = None) -> ConnectionLimits:
    """The listeners' timeouts and caps; `max_connections` when the open-file limit
    leaves room for fewer connections than configured."""
    settings = runtime.config.server
    return ConnectionLimits(
        idle_timeout=settings.idle_timeout,
        head_timeout=settings.head_timeout,
        max_connections=max_connections or settings.max_connections,
        max_per_source=settings.max_connections_per_source,
    )


def _fitted_limits(runtime: Runtime) -> ConnectionLimits:
    """The limits with the connection cap fitted to the open-file limit (raised first).
    Every listener may fill its cap, so the descriptors must be there for all of them."""
    settings = runtime.config.server
    configured = "max_connections" in settings.model_fields_set
    fit = connection_budget(
        settings.max_connections, 1 + len(runtime.listeners), configured=configured
    )
    return connection_limits(runtime, fit)


def listener_server(
    runtime: Runtime, listener: Listener, log: AccessLog, limits: ConnectionLimits
) -> MetadataServer:
    """A feature's extra listener: its own dispatcher and callers; budgets, metrics and the
    access log shared with the metadata listener; no hooks; the byte cache, the signed
    proxy and the journal when the listener asks for them."""
    settings = runtime.config.server
    trust = runtime.proxy if listener.signed_proxy else None
    server = MetadataServer(
        listener.dispatcher,
        listener.callers,
        runtime.limiters,
        server_header=settings.server_header,
        access_log=log,
        metrics=runtime.metrics,
        limits=limits,
        byte_cache=listener.byte_cache,
        cache_closing=listener.byte_cache,
        proxy=None if trust is None else ProxyCallers(trust, runtime.inventory),
        request_ring=runtime.request_ring if listener.journal else None,
        clock=runtime.clock.now,
        on_answer=listener.on_answer,
    )
    if listener.attach is not None:
        listener.attach(server)
    return server


def admin_app(runtime: Runtime) -> Starlette:
    """The admin application with every feature's routes, public paths and collectors."""
    inventory = runtime.inventory
    return build_admin_app(
        token=runtime.admin_token,
        metrics=runtime.metrics,
        features=runtime.admin,
        collectors=runtime.collectors,
        health=lambda: {"vms": len(inventory.vms)},
        readiness=lambda: report(runtime.readiness()),
        guard=runtime.login_guard,
    )


def _hint(host: str, exc: OSError) -> str:
    """What to do about the two failures people meet first on 169.254.169.254:80."""
    if host == IMDS_HOST and exc.errno == errno.EADDRNOTAVAIL:
        return " (the address is not on this machine: run `sudo openimds net up` first)"
    if host == WIRESERVER_HOST and exc.errno == errno.EADDRNOTAVAIL:
        return (
            " (the address is not on this machine: run `sudo openimds net up --wireserver` first)"
        )
    if exc.errno == errno.EACCES:
        return " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    return ""


def _admin_config(runtime: Runtime) -> uvicorn.Config:
    app = admin_app(runtime)
    listen = runtime.config.admin.listen
    common: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "off",
        "loop": "none",
    }
    tls = runtime.admin_tls
    if tls is not None:
        common["ssl_context_factory"] = lambda config, default: tls.context
    if listen.path is not None:
        return uvicorn.Config(app, uds=listen.path, **common)
    return uvicorn.Config(app, host=listen.host, port=listen.port, **common)


async def serve(
    runtime: Runtime,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, or until `stop` is set when one is given (a server
    embedded in a test's thread: openimds.testing). `on_ready` runs once every listener
    is bound and `runtime.bound` holds their URLs; without it the readiness line is
    printed."""
    access = access_log(runtime)
    limits = _fitted_limits(runtime)
    server = metadata_server(runtime, access, limits)
    # Every socket is bound here, before anything is served, so a busy port is one clear
    # OSError (run() prints it) rather than uvicorn's SystemExit from a task.
    admin_sock = _admin_socket(runtime.config.admin.listen)
    _write_token_file(runtime, admin_sock)
    listen = runtime.config.server.listen
    servers: list[MetadataServer] = [server]
    listeners: list[asyncio.Server] = []
    try:
        listeners.append(await _listen("metadata listener", server, listen))
        for extra in runtime.listeners:
            extra_server = listener_server(runtime, extra, access, limits)
            bound = await _listen(f"{extra.name} listener", extra_server, extra.address, extra)
            servers.append(extra_server)
            listeners.append(bound)
            scheme = "https" if extra.tls is not None else "http"
            runtime.bound[extra.name] = _client_url(scheme, bound.sockets[0].getsockname())
    except OSError:
        for bound in listeners:
            bound.close()
        admin_sock.close()
        _remove_unix_socket(runtime.config.admin.listen)
        raise
    admin = uvicorn.Server(_admin_config(runtime))
    admin_task = asyncio.create_task(admin.serve([admin_sock]))
    while not admin.started:
        if admin_task.done():
            for bound in listeners:
                bound.close()
            await admin_task  # surfaces the admin listener's failure
            raise OSError(f"cannot start the admin listener on {runtime.config.admin.listen}")
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    stop = stop or _on_signals(loop)
    _warn_if_exposed(runtime.config.admin.listen, tls=runtime.admin_tls is not None)
    runtime.follow_store(loop.call_soon_threadsafe)
    if runtime.admin_tls is not None:  # printed so a client can pin it
        print(f"openimds: admin TLS certificate SHA-256 {runtime.admin_tls.fingerprint}")
    _announce(_describe(listeners[0], admin, runtime), on_ready)
    background = [
        asyncio.create_task(_tick(servers, runtime)),
        asyncio.create_task(_warm_up(runtime)),
    ]
    try:
        await stop.wait()
    finally:
        runtime.stopping = True
        for task in background:
            task.cancel()
        _close_metadata(listeners, servers)
        admin.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await admin_task
        _remove_unix_socket(runtime.config.admin.listen)
        access.flush()


def _close_metadata(listeners: list[asyncio.Server], servers: list[MetadataServer]) -> None:
    """Stop accepting on the metadata-protocol listeners and close their connections."""
    for bound in listeners:
        bound.close()
    for each in servers:
        for conn in list(each.connections):
            if conn.transport is not None:
                conn.transport.close()


def _on_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _announce(described: str, on_ready: Callable[[], None] | None) -> None:
    if on_ready is None:
        print(f"openimds: {described}", flush=True)
    else:
        on_ready()


def _warn_if_exposed(admin: ListenAddress, *, tls: bool) -> None:
    # The README promises loopback, a Unix socket or TLS; say so when none holds.
    if not admin.is_local and not tls:
        log.warning(
            "admin listener %s is reachable from other hosts without TLS: the admin token "
            "crosses the network in clear text; bind it to loopback or unix:PATH",
            admin,
        )


async def _listen(
    what: str, server: MetadataServer, listen: ListenAddress, extra: Listener | None = None
) -> asyncio.Server:
    """One metadata-protocol listener, bound; an OSError says which and why."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(
            lambda: MetadataProtocol(server),
            **_metadata_bind(listen),
            backlog=2048,
            ssl=None if extra is None else extra.tls,
        )
    except OSError as exc:
        hint = _hint(listen.host, exc)
        if extra is not None and exc.errno == errno.EADDRINUSE:
            setting = extra.setting or f"hosts.{extra.name}.listen"
            hint = f" (set {setting} to another HOST:PORT)"
        raise OSError(f"{what} {listen}: {exc.strerror or exc}{hint}") from None


def _metadata_bind(listen: ListenAddress) -> dict[str, Any]:
    """Where loop.create_server binds: `[::]` as a dual-stack socket of our own (asyncio
    would make it IPv6-only), anything else by host and port as before."""
    if listen.host == DUAL_STACK:
        return {"sock": _dual_stack_socket(listen.port, backlog=2048)}
    return {"host": listen.host, "port": listen.port, "reuse_address": True}


def _dual_stack_socket(port: int, *, backlog: int) -> socket.socket:
    """`[::]` with IPV6_V6ONLY off: IPv4 callers arrive as ::ffff:a.b.c.d (which fleet
    matching reads as a.b.c.d), so one listener serves VMs calling from either family."""
    return socket.create_server(
        (DUAL_STACK, port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True
    )


def _admin_socket(listen: ListenAddress) -> socket.socket:
    """The admin listener's socket, bound and listening."""
    if listen.path is not None:
        return _admin_unix_socket(listen.path)
    family = socket.AF_INET6 if listen.is_ipv6 else socket.AF_INET
    try:
        if listen.host == DUAL_STACK:
            return _dual_stack_socket(listen.port, backlog=128)
        return socket.create_server((listen.host, listen.port), family=family, backlog=128)
    except OSError as exc:
        raise OSError(f"admin listener {listen}: {exc.strerror or exc}") from None


def _write_token_file(runtime: Runtime, admin_sock: socket.socket) -> None:
    """Beside a Unix admin socket, its token for local commands (config/admin_token.py)."""
    listen = runtime.config.admin.listen
    if listen.path is None:
        return
    try:
        write_token_file(listen.path, runtime.admin_token)
    except OSError as exc:
        admin_sock.close()
        _remove_unix_socket(listen)
        raise OSError(f"admin listener {listen}: token file: {exc.strerror or exc}") from None


def _remove_unix_socket(listen: ListenAddress) -> None:
    if listen.path is not None:
        with contextlib.suppress(OSError):
            os.unlink(listen.path)
        remove_token_file(listen.path)


def _admin_unix_socket(path: str) -> socket.socket:
    """Bind the admin Unix socket ourselves, owner-only (0600) from the first moment:
    uvicorn would make it 0666. A stale socket left by a crash is replaced; a live one
    (another server answers on it) is an error."""
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(f"admin listener unix:{path}: exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(path) == 0:
                raise OSError(f"admin listener unix:{path}: address already in use")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(f"admin listener unix:{path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return sock


async def _warm_up(runtime: Runtime) -> None:
    """The features' warm-ups, a step at a time, the loop serving between steps."""
    for warmup in runtime.warmups:
        try:
            for _ in warmup():
                await asyncio.sleep(0)
        except StoreError as exc:  # what it prepares is made on demand instead
            log.warning("warming up after the start: %s", exc)
        except Exception:
            log.exception("warming up after the start failed")


async def _tick(servers: list[MetadataServer], runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(1.0)
        for server in servers:
            for _ in server.tick_in_slices():
                await asyncio.sleep(0)
        for job in runtime.background:
            try:
                job()
            except StoreError:
                pass  # the store logs its outage once; the job runs again next tick
            except Exception:
                log.exception("background job failed")


def _describe(listener: asyncio.Server, admin: uvicorn.Server, runtime: Runtime) -> str:
    meta = listener.sockets[0].getsockname()
    runtime.bound["metadata"] = _client_url("http", meta)
    where = f"metadata on http://{_hostport(meta)}"
    listen = runtime.config.admin.listen
    if listen.is_unix:
        admin_at = str(listen)
    else:
        sockets = admin.servers[0].sockets if admin.servers else []
        scheme = "https" if runtime.admin_tls is not None else "http"
        admin_at = f"{scheme}://{_hostport(sockets[0].getsockname())}" if sockets else str(listen)
    runtime.bound["admin"] = admin_at
    line = f"{where}; admin on {admin_at}; {len(runtime.inventory.vms)} VM(s)"
    extras = [f"{x.name} on {runtime.bound[x.name]}" for x in runtime.listeners]
    return line + (f"; also {', '.join(extras)}" if extras else "")


def _client_url(scheme: str, sockname: object) -> str:
    """The URL a client on this host uses: a wildcard bind is reached on loopback."""
    if isinstance(sockname, tuple):
        host = WILDCARDS.get(str(sockname[0]), str(sockname[0]))
        return f"{scheme}://{_hostport((host, sockname[1]))}"
    return f"{scheme}://{sockname}"


def _hostport(sockname: object) -> str:
    if isinstance(sockname, tuple):
        host = str(sockname[0])
        return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"
    return str(sockname)


def release_start_memory() -> None:
    """After the start: hand the memory the start used and freed (a large VM file's
    validated models) back to the system (glibc keeps freed blocks for reuse, so the
    resident size would stay at its start-up peak), and freeze what remains: the fleet's
    snapshots live as long as the server, and later collections need not scan them. The
    collector is on again afterwards, whoever turned it off.

    No collection first: the start leaves about a thousand objects of cyclic garbage
    whatever the fleet's size (classes and functions built while importing and
    validating), under a megabyte, and the resident size after the trim is the same
    with or without one, while a full collection over a large fleet is a visible part
    of the start (docs/performance.md)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    gc.freeze()
    gc.enable()


def run(runtime: Runtime) -> None:
    """Run until SIGINT/SIGTERM, on uvloop where it is installed."""
    release_start_memory()
    try:
        import uvloop

        runner: asyncio.Runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - platforms without uvloop
        runner = asyncio.Runner()
    try:
        with runner:
            runner.run(serve(runtime))
    except OSError as exc:
        print(f"openimds: cannot listen: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        runtime.close()
