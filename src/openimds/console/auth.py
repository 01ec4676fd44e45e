"""The console's door: the login form, the session cookie, and the CSRF check every change
passes. Pages themselves never see a request that has not been through here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openimds.console.api import AdminApi, ApiError
from openimds.console.render import Pages, harden
from openimds.console.sessions import COOKIE, CSRF_HEADER, Session, Sessions, csrf_ok, token_ok
from openimds.web.login_guard import UNIX, LoginGuard, local

PREFIX: Final[str] = "/console"
MAX_FORM: Final[int] = 64 * 1024  # console forms are a few fields; refuse anything bigger


@dataclass(slots=True)
class Visit:
    """One signed-in request: its session, its form fields (for a change), and the admin
    API it may call."""

    request: Request
    session: Session
    api: AdminApi
    form: dict[str, str] = field(default_factory=dict)

    def flash(self, message: str, *, error: bool = False) -> None:
        self.session.flash = (message, error)


PageHandler = Callable[[Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Door:
    def __init__(self, token: str, pages: Pages, guard: LoginGuard, *, secure: bool) -> None:
        self.token = token
        self.pages = pages
        self.guard = guard
        self.secure = secure
        self.sessions = Sessions()

    def guarded(self, handler: PageHandler) -> Endpoint:
        """A page or action that needs a session; a change also needs the CSRF token."""

        async def endpoint(request: Request) -> Response:
            session = self.sessions.find(request.cookies.get(COOKIE), time.monotonic())
            if session is None:
                return self._to_login(request)
            form: dict[str, str] = {}
            if request.method != "GET":
                body = await request.body()
                if len(body) > MAX_FORM:
                    return self._refuse(request, 413, "the form is too large")
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                given = request.headers.get(CSRF_HEADER) or form.get("csrf")
                if not csrf_ok(session, given):
                    return self._refuse(request, 403, "the form's CSRF token is missing or wrong")
            api = AdminApi(request.app, self.token, _peer(request))
            try:
                return harden(await handler(Visit(request, session, api, form)))
            except ApiError as exc:  # a page whose data the API refused: say why
                return self._refuse(request, exc.answer.status, str(exc))

        return endpoint

    async def login_form(self, request: Request) -> Response:
        return self.pages.page(request, "login.html", next=_next(request.query_params))

    async def login(self, request: Request) -> Response:
        if not _same_origin(request):
            return self._refuse(request, 403, "a login must come from the console's own page")
        source = _peer(request)[0]
        form = dict(parse_qsl((await request.body())[:MAX_FORM].decode("utf-8", "replace")))
        valid = token_ok(self.token, form.get("token", ""))
        # As the API's door: this machine's own sources get in with the right token.
        wait = None if valid and local(source) else self.guard.retry_after(source)
        if wait is not None:
            message = f"Too many wrong tokens from {source}; try again in {wait} s."
            response = self._login_page(request, 429, message, "")
            response.headers["Retry-After"] = str(wait)
            return response
        target = _next(form)
        if not valid:
            self.guard.failed(source)
            return self._login_page(request, 401, "That is not the admin token.", target)
        sid, _ = self.sessions.open(time.monotonic())
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path=PREFIX,
        )
        return harden(response)

    async def logout(self, request: Request) -> Response:
        session = self.sessions.find(request.cookies.get(COOKIE), time.monotonic())
        form = dict(parse_qsl((await request.body())[:MAX_FORM].decode("utf-8", "replace")))
        given = request.headers.get(CSRF_HEADER) or form.get("csrf")
        if session is None or not csrf_ok(session, given):
            return self._refuse(request, 403, "the form's CSRF token is missing or wrong")
        self.sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return harden(response)

    def _login_page(self, request: Request, status: int, error: str, target: str) -> Response:
        return self.pages.page(request, "login.html", status=status, error=error, next=target)

    def _to_login(self, request: Request) -> Response:
        if request.method != "GET" or "text/event-stream" in request.headers.get("accept", ""):
            return self._refuse(request, 401, "sign in first: the session is missing or expired")
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"{PREFIX}/login?next={quote(here)}"
        if request.headers.get("hx-request"):
            # htmx would swap the login page into a fragment; make it load the page instead.
            return harden(Response(status_code=204, headers={"HX-Redirect": target}))
        return harden(RedirectResponse(target, status_code=303))

    def _refuse(self, request: Request, status: int, message: str) -> Response:
        return self.pages.page(request, "refused.html", status=status, message=message)


def _peer(request: Request) -> tuple[str, int]:
    client = request.client
    return (client.host, client.port) if client else (UNIX, 0)


def _next(values: Mapping[str, str]) -> str:
    """Where to go after logging in: a console page, never another site."""
    raw = values.get("next", "")
    if raw.startswith(f"{PREFIX}/") and "//" not in raw and "\\" not in raw:
        return raw
    return f"{PREFIX}/"


def _same_origin(request: Request) -> bool:
    """A login posted from another site's page is refused (the cookie is SameSite=Strict,
    but the login itself must not be forgeable either). Browsers send Origin on POST."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser (curl, a script): nothing to forge with
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host
