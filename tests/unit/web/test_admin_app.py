"""The admin app in-process: its OpenAPI document covers every route, documented or not."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from openimds.fleet.admin import FleetAdmin
from openimds.inventory.live import LiveInventory
from openimds.inventory.stored import StoredInventory
from openimds.store import StoreError
from openimds.store.memory import MemoryStore
from openimds.web.admin_app import build_admin_app
from openimds.web.admin_errors import AdminError
from openimds.web.metrics import RequestMetrics
from tests.support.imds import vm_spec

TOKEN = "unit-test-token-0123456789"


async def undocumented(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def with_parameter(request: Request) -> Response:
    """Look one thing up."""
    return JSONResponse({"id": request.path_params["item_id"]})


class Refused(Exception):
    """A feature's own error, mapped to 409 by its errors()."""


async def failing_store(request: Request) -> Response:
    raise StoreError("disk full")


async def refusing(request: Request) -> Response:
    raise Refused("not now")


class Stale(AdminError):
    """The shell's own refusal: its status travels with it, no errors() entry."""

    status = 412


async def shell_refusing(request: Request) -> Response:
    if request.query_params.get("stale"):
        raise Stale("the VM changed meanwhile")
    raise AdminError("limit: expected a whole number")


class Things:
    """A feature's admin routes, in the one style every feature uses."""

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/things", undocumented, methods=["GET", "POST"]),
            Route("/things/{item_id:str}", with_parameter, methods=["GET"]),
            Route("/broken", failing_store, methods=["POST"]),
            Route("/refused", refusing, methods=["POST"]),
            Route("/shell", shell_refusing, methods=["POST"]),
        ]

    def public_paths(self) -> list[str]:
        return ["/things"]

    def errors(self) -> Mapping[type[Exception], int]:
        return {Refused: 409}


def _app() -> Starlette:
    inventory = LiveInventory([vm_spec("vm-a")])
    return build_admin_app(
        token=TOKEN,
        metrics=RequestMetrics(),
        features=[FleetAdmin(StoredInventory(MemoryStore(), inventory)), Things()],
        health=lambda: {"vms": len(inventory.vms)},
    )


def _call(method: str, path: str, authorization: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def _get(path: str, authorization: str | None = None) -> httpx.Response:
    return _call("GET", path, authorization)


def test_one_exception_map_a_store_failure_is_503_on_any_route() -> None:
    broken = _call("POST", "/broken", f"Bearer {TOKEN}")
    assert broken.status_code == 503
    assert broken.json() == {"error": "state store: disk full"}
    refused = _call("POST", "/refused", f"Bearer {TOKEN}")
    assert refused.status_code == 409
    assert refused.json() == {"error": "not now"}


def test_the_shells_refusals_carry_their_status() -> None:
    plain = _call("POST", "/shell", f"Bearer {TOKEN}")
    assert (plain.status_code, plain.json()) == (400, {"error": "limit: expected a whole number"})
    stale = _call("POST", "/shell?stale=1", f"Bearer {TOKEN}")
    assert (stale.status_code, stale.json()) == (412, {"error": "the VM changed meanwhile"})
    unknown = _call("GET", "/vms/nobody/metadata", f"Bearer {TOKEN}")  # fleet's UnknownVm
    assert unknown.status_code == 404


def test_openapi_lists_every_route_and_is_valid() -> None:
    document = _get("/openapi.json", f"Bearer {TOKEN}")
    assert document.headers["content-type"] == "application/json"
    body = document.json()
    validate(body)
    assert set(body["paths"]) == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/vms",
        "/vms/remove",
        "/vms/{name}",
        "/vms/{name}/metadata",
        "/vms/{name}/metadata/versions",
        "/things",
        "/things/{item_id}",
        "/broken",
        "/refused",
        "/shell",
    }
    assert set(body["paths"]["/things"]) == {"get", "post"}
    item = body["paths"]["/things/{item_id}"]["get"]
    assert item["summary"] == "Look one thing up."
    assert item["parameters"][0]["name"] == "item_id"


def test_public_paths_skip_the_token_and_others_do_not() -> None:
    assert _get("/things").status_code == 200
    assert _get("/things/x").status_code == 401
    assert _get("/things/x", f"Bearer {TOKEN}").json() == {"id": "x"}


def test_bearer_scheme_is_case_insensitive_and_the_token_exact() -> None:
    assert _get("/vms", f"bearer {TOKEN}").status_code == 200
    assert _get("/vms", f"BEARER  {TOKEN}").status_code == 200
    for bad in (TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer"):
        response = _get("/vms", bad)
        assert response.status_code == 401, bad
        assert response.headers["www-authenticate"].startswith("Bearer")


def _as(source: str, app: Starlette, path: str, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(source, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_refused_tokens_are_limited_per_source() -> None:
    app = _app()  # the default: 10 refused tokens per source per minute
    for _ in range(10):
        assert _as("10.0.0.1", app, "/vms", "Bearer wrong-token-000000").status_code == 401
    locked = _as("10.0.0.1", app, "/vms", f"Bearer {TOKEN}")
    assert locked.status_code == 429  # even the right token: a guesser learns nothing
    wait = locked.headers["retry-after"]
    assert 58 <= int(wait) <= 60
    assert locked.json() == {"error": f"too many refused tokens from 10.0.0.1; retry in {wait} s"}
    assert _as("10.0.0.1", app, "/healthz", None).status_code == 200  # public: no token
    assert _as("10.0.0.2", app, "/vms", f"Bearer {TOKEN}").status_code == 200
    assert _as("10.0.0.2", app, "/vms", None).status_code == 401


def test_this_machine_gets_in_with_the_right_token_past_the_limit() -> None:
    app = _app()
    for source in ("127.0.0.1", "::1", "::ffff:127.0.0.5"):
        for _ in range(10):
            assert _as(source, app, "/vms", "Bearer wrong-token-000000").status_code == 401
        # Wrong tokens stay refused and counted, and past the limit they get the wait...
        assert _as(source, app, "/vms", "Bearer wrong-token-000000").status_code == 429
        # ...but the right one always works from loopback.
        assert _as(source, app, "/vms", f"Bearer {TOKEN}").status_code == 200, source
    # Any other source (a TLS listener on another address) keeps the limit.
    for _ in range(10):
        assert _as("192.0.2.7", app, "/vms", "Bearer wrong-token-000000").status_code == 401
    assert _as("192.0.2.7", app, "/vms", f"Bearer {TOKEN}").status_code == 429


def test_good_tokens_are_never_counted() -> None:
    app = _app()
    for _ in range(50):
        assert _as("10.0.0.1", app, "/vms", f"Bearer {TOKEN}").status_code == 200
    assert _as("10.0.0.1", app, "/vms", "Bearer wrong-token-000000").status_code == 401


def test_openapi_declares_the_token_and_the_answers_of_every_protected_route() -> None:
    body = _get("/openapi.json", f"Bearer {TOKEN}").json()
    validate(body)
    assert body["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert body["security"] == [{"bearer": []}]
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            public = path in ("/healthz", "/readyz", "/things")
            assert (operation.get("security") == []) == public, (method, path)
            if not public:
                assert {"401", "429", "503"} <= set(operation["responses"]), (method, path)
            for status, answer in operation["responses"].items():
                if status[0] in "45":
                    schema = answer["content"]["application/json"]["schema"]
                    # Readiness answers its 503 with the report of what is not ready.
                    shape = "Readiness" if (path, status) == ("/readyz", "503") else "Error"
                    assert schema == {"$ref": f"#/components/schemas/{shape}"}


def test_405_lists_every_method_of_the_path() -> None:
    answer = _call("PATCH", "/vms", f"Bearer {TOKEN}")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
    assert answer.json() == {"error": "method PATCH not allowed here"}
