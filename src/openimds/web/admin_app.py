"""The admin listener: a Starlette application, on loopback or a Unix socket, token-guarded.

It never shares a socket with the metadata listener. Every route needs
`Authorization: Bearer <token>` except the few a relying party or a probe must reach
without one (listed in `public_paths`).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, compile_path
from starlette.schemas import SchemaGenerator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openimds import __version__
from openimds.store import StoreError
from openimds.web.admin_errors import AdminError
from openimds.web.login_guard import UNIX, LoginGuard, local
from openimds.web.metrics import MetricsCollector, RequestMetrics

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("openimds.admin")

_schemas = SchemaGenerator(
    {"openapi": "3.0.3", "info": {"title": "openimds admin API", "version": __version__}}
)


class AdminRoutes(Protocol):
    """One feature's part of the admin API, in one style: its routes, the paths a client
    reaches without the token (Starlette path templates), and how its exceptions become
    answers: `errors()` maps exceptions of the core and crypto to a status (the body is
    `{"error": str(exc)}`); the shell's own refusals are AdminError subclasses, each
    carrying its status, and need no entry."""

    def routes(self) -> list[BaseRoute]: ...

    def public_paths(self) -> list[str]: ...

    def errors(self) -> Mapping[type[Exception], int]: ...


class BadBody(AdminError, ValueError):
    """A request body that is not JSON: a 400 on every admin route."""


def _not_a_number(literal: str) -> Any:
    # Python's json takes NaN and Infinity; RFC 8259 does not, and no limit holds them.
    raise BadBody(f"the body is not JSON: {literal} is not a JSON number")


async def json_body(request: Request) -> Any:
    """The request's JSON body, or BadBody saying why not (one wording for every route)."""
    try:
        return json.loads(await request.body(), parse_constant=_not_a_number)
    except BadBody:
        raise
    except ValueError as exc:
        raise BadBody(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadBody("the body is nested too deeply") from None


def whole_number(params: Mapping[str, str], name: str, error: type[Exception]) -> int | None:
    """A query parameter (or header) that must be a whole number, None when absent; one
    wording on every route, raised as the route's own `error` (mapped to a 400).
    isascii: str.isdigit alone passes "²", which int() refuses."""
    raw = params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise error(f"{name}: expected a whole number, got {raw!r}")
    return int(raw)


class TokenAuth(BaseHTTPMiddleware):
    def __init__(
        self, app: Any, token: str, public_paths: Iterable[str], guard: LoginGuard
    ) -> None:
        super().__init__(app)
        self.expected = token.encode()
        self.public = [compile_path(template)[0] for template in public_paths]
        self.guard = guard

    def is_public(self, path: str) -> bool:
        return any(pattern.fullmatch(path) for pattern in self.public)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.is_public(request.url.path):
            return await call_next(request)
        source = request.client.host if request.client else UNIX
        # The scheme is case-insensitive (RFC 9110 11.1); the token is compared in
        # constant time.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        right = hmac.compare_digest(given.strip().encode(), self.expected)
        valid = scheme.lower() == "bearer" and right
        # A source past its failures is refused before its token is looked at, so the
        # answer tells a guesser nothing until the wait is over; this machine's own
        # sources (loopback, the socket) get in with the right token regardless.
        wait = None if valid and local(source) else self.guard.retry_after(source)
        if wait is not None:
            return JSONResponse(
                {"error": f"too many refused tokens from {source}; retry in {wait} s"},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        if not valid:
            # Only a token that was tried counts toward the limit: a request with none (a
            # browser's favicon, a probe) guesses nothing, and must not lock a host out.
            if given.strip():
                self.guard.failed(source)
            return JSONResponse(
                {"error": "unauthorized", "error_description": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="openimds-admin"'},
            )
        return await call_next(request)


class RequestLog:
    """One info line per admin request, refused logins included: method, path, status,
    peer and latency. Never a header or the query string, which may carry secrets. Plain
    ASGI (outside TokenAuth), so it sees every answer's status without buffering it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            client = scope.get("client")
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "peer": client[0] if client else "unix",
            }
            log.info("admin request", extra={"fields": fields})


def error_handlers(
    features: Iterable[AdminRoutes],
) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """The one exception map of the admin app: the shell's own refusals (AdminError, at
    the status each carries), each feature's errors from the core and crypto, and on every
    route a store failure as 503 (the write did not happen; the caller may retry)."""
    statuses: dict[type[Exception], int] = {StoreError: 503}
    for feature in features:
        statuses.update(feature.errors())

    def handler_for(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, exc: Exception) -> Response:
            message = f"state store: {exc}" if isinstance(exc, StoreError) else str(exc)
            return JSONResponse({"error": message}, status_code=status)

        return handle

    async def refused(request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, AdminError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    handlers = {kind: handler_for(status) for kind, status in statuses.items()}
    return {AdminError: refused, **handlers}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
READINESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "store", "behind"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "store": {
            "type": "object",
            "required": ["reachable"],
            "properties": {
                "reachable": {"type": "boolean"},
                "unreachable_for": {"type": "number", "description": "seconds"},
            },
        },
        "behind": {
            "type": "object",
            "required": ["changes", "for"],
            "properties": {
                "changes": {"type": "integer"},
                "for": {"type": "number", "description": "seconds"},
            },
        },
    },
}
# What the middleware and the exception map answer on any protected route, whatever the
# route's own docstring says.
_PROTECTED_ANSWERS = {
    "401": "No valid bearer token (Authorization: Bearer <admin token>).",
    "429": "Too many refused tokens from this address; retry after Retry-After seconds.",
    "503": "The state store failed; nothing was changed (retry later).",
}


def openapi_document(routes: list[BaseRoute], public: Iterable[str] = ()) -> dict[str, Any]:
    """The admin API as OpenAPI 3.0: every route, documented or not, with its path
    parameters declared (a valid document needs both; route docstrings rarely give them),
    the bearer token required everywhere but on the public paths, and the answers the
    token check and a failing store give on every protected route."""
    schema = _schemas.get_schema(routes)
    paths: dict[str, dict[str, Any]] = schema.setdefault("paths", {})
    for info in _schemas.get_endpoints(routes):
        operations = paths.setdefault(info.path, {})
        if info.http_method not in operations:  # no YAML docstring: list it anyway
            doc = (info.func.__doc__ or "").strip().splitlines()
            operations[info.http_method] = {
                "summary": doc[0] if doc else info.func.__name__.replace("_", " "),
                "responses": {"default": {"description": "See docs/ for this route."}},
            }
    public_paths = {re.sub(r":[^}]*}", "}", template) for template in public}
    for path, operations in paths.items():
        names = re.findall(r"{([^}:]+)(?::[^}]*)?}", path)
        for operation in operations.values():
            declared = {p.get("name") for p in operation.get("parameters", [])}
            operation.setdefault("parameters", []).extend(
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in names
                if n not in declared
            )
            _complete_answers(operation, protected=path not in public_paths)
    schema["components"] = {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": ERROR_SCHEMA, "Readiness": READINESS_SCHEMA},
    }
    schema["security"] = [{"bearer": []}]
    return schema


def _complete_answers(operation: dict[str, Any], *, protected: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if protected:
        for status, description in _PROTECTED_ANSWERS.items():
            responses.setdefault(status, {"description": description})
    else:
        operation["security"] = []  # reached without the token
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for status, response in responses.items():
        if str(status)[0] in "45" and isinstance(response, dict):
            response.setdefault("content", error)


def method_not_allowed(
    routes: list[BaseRoute],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """405 with every method the path takes in Allow: a path served by several routes
    (GET and POST in two) would otherwise list only the first route's."""

    async def handle(request: Request, exc: Exception) -> Response:
        # The routes of the path template that matched first (a literal /events/scenario
        # comes before /events/{event_id}, and only its own methods count).
        matched = [
            r
            for r in routes
            if isinstance(r, Route) and r.matches(request.scope)[0] is not Match.NONE
        ]
        template = matched[0].path if matched else None
        allowed: set[str] = set()
        for route in matched:
            if route.path == template:
                allowed |= route.methods or set()
        return JSONResponse(
            {"error": f"method {request.method} not allowed here"},
            status_code=405,
            headers={"Allow": ", ".join(sorted(allowed))},
        )

    return handle


def build_admin_app(
    *,
    token: str,
    metrics: RequestMetrics,
    features: Iterable[AdminRoutes] = (),
    collectors: Iterable[Collector] = (),
    health: Callable[[], Mapping[str, object]] = dict,
    readiness: Callable[[], Mapping[str, object]] = lambda: {"status": "ready"},
    guard: LoginGuard | None = None,
) -> Starlette:
    """The admin application: its own routes and every feature's, behind the token."""
    features = list(features)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(metrics))
    for collector in collectors:
        registry.register(collector)

    async def healthz(request: Request) -> Response:
        """
        responses:
          200:
            description: The server is up (alive); ready says whether it reaches its
              state store and has applied every change committed to it (see /readyz).
            content:
              application/json:
                schema:
                  type: object
                  required: [status, ready]
                  properties:
                    status: {type: string, enum: [ok]}
                    ready: {type: boolean}
        """
        ready = readiness().get("status") == "ready"
        return JSONResponse({"status": "ok", "ready": ready, **health()})

    async def readyz(request: Request) -> Response:
        """
        responses:
          200:
            description: "Ready: the state store answers and every change committed to
              it is applied here."
            content:
              application/json:
                schema: {$ref: "#/components/schemas/Readiness"}
          503:
            description: "Not ready: the state store is unreachable (and for how long),
              or this node is behind the store's change log (by how many changes, for
              how long). It keeps serving what it holds."
            content:
              application/json:
                schema: {$ref: "#/components/schemas/Readiness"}
        """
        body = readiness()
        return JSONResponse(body, status_code=200 if body.get("status") == "ready" else 503)

    async def prometheus(request: Request) -> Response:
        """
        responses:
          200:
            description: Prometheus metrics in the text exposition format.
        """
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        """
        responses:
          200:
            description: This OpenAPI description.
        """
        # JSON, as the path promises (Starlette's OpenAPIResponse would answer YAML).
        return JSONResponse(openapi_document(request.app.routes, public))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    ]
    public: list[str] = ["/healthz", "/readyz"]
    for feature in features:
        routes.extend(feature.routes())
        public.extend(feature.public_paths())
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestLog),
            Middleware(TokenAuth, token=token, public_paths=public, guard=guard or LoginGuard()),
        ],
        exception_handlers={**error_handlers(features), 405: method_not_allowed(routes)},
    )
    app.state.registry = registry
    return app
