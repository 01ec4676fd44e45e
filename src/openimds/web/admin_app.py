"""The admin listener: a Starlette application, on loopback or a Unix socket, token-guarded.

It never shares a socket with the metadata listener. Every route needs
`Authorization: Bearer <token>` except the few a relying party or a probe must reach
without one (listed in `public_paths`).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from openimds import __version__
from openimds.fleet import Fleet
from openimds.web.metrics import MetricsCollector, RequestMetrics

Handler = Callable[[Request], Awaitable[Response]]

_schemas = SchemaGenerator(
    {"openapi": "3.0.3", "info": {"title": "openimds admin API", "version": __version__}}
)


class TokenAuth(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str, public_paths: frozenset[str]) -> None:
        super().__init__(app)
        self.expected = token.encode()
        self.public_paths = public_paths

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in self.public_paths:
            return await call_next(request)
        # The scheme is case-insensitive (RFC 9110 11.1); the token is compared in
        # constant time.
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        valid = hmac.compare_digest(given.strip().encode(), self.expected)
        if scheme.lower() != "bearer" or not valid:
            return JSONResponse(
                {"error": "unauthorized", "error_description": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="openimds-admin"'},
            )
        return await call_next(request)


def openapi_document(routes: list[BaseRoute]) -> dict[str, Any]:
    """The admin API as OpenAPI 3.0: every route, documented or not, with its path
    parameters declared (a valid document needs both; route docstrings rarely give them)."""
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
    for path, operations in paths.items():
        names = re.findall(r"{([^}:]+)(?::[^}]*)?}", path)
        for operation in operations.values():
            declared = {p.get("name") for p in operation.get("parameters", [])}
            operation.setdefault("parameters", []).extend(
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in names
                if n not in declared
            )
    return schema


def build_admin_app(
    *,
    token: str,
    fleet: Fleet,
    metrics: RequestMetrics,
    extra_routes: Iterable[BaseRoute] = (),
    public_paths: Iterable[str] = (),
    collectors: Iterable[Collector] = (),
) -> Starlette:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(metrics))
    for collector in collectors:
        registry.register(collector)

    async def healthz(request: Request) -> Response:
        """
        responses:
          200:
            description: The server is up.
        """
        return JSONResponse({"status": "ok", "vms": len(fleet.vms)})

    async def prometheus(request: Request) -> Response:
        """
        responses:
          200:
            description: Prometheus metrics in the text exposition format.
        """
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def vms(request: Request) -> Response:
        """
        responses:
          200:
            description: The effective VM inventory, as the VM file model validated it.
        """
        return JSONResponse(
            {
                "vms": [
                    {
                        "name": name,
                        "revision": fleet.vms[name].revision,
                        **spec.model_dump(mode="json", exclude_none=True),
                    }
                    for name, spec in fleet.specs.items()
                ]
            }
        )

    async def openapi(request: Request) -> Response:
        """
        responses:
          200:
            description: This OpenAPI description.
        """
        # JSON, as the path promises (Starlette's OpenAPIResponse would answer YAML).
        return JSONResponse(openapi_document(request.app.routes))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/vms", vms, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        *extra_routes,
    ]
    public = frozenset({"/healthz", *public_paths})
    app = Starlette(
        routes=routes, middleware=[Middleware(TokenAuth, token=token, public_paths=public)]
    )
    app.state.fleet = fleet
    return app
