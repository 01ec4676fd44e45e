"""How console pages are written: Jinja2 templates shipped in the package (autoescaped),
the few filters they use, and the headers every console answer carries."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from openimds import __version__

# Nothing but our own origin: no inline script or style, no frames, forms post only here.
CSP: Final[str] = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with
    # its own form posts, and the login checks Origin.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def harden(response: Response) -> Response:
    """The console's security headers; pages are never cached (they hold fleet data)."""
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _ago(epoch: float | int | None) -> str:
    if epoch is None:
        return "-"
    seconds = int(time.time() - float(epoch))
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _utc(epoch: float | int | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%H:%M:%S.%f")[:-3]


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False)


def _indented(body: str) -> str:
    """A JSON answer indented for reading (the VM gets it compact); anything else as is."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _status_class(status: int) -> str:
    if status == 429:
        return "s429"
    return {4: "s4xx", 5: "s5xx"}.get(status // 100, "s2xx")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("openimds.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=_ago,
        utc=_utc,
        clock=_clock,
        pretty=_pretty,
        indented=_indented,
        status_class=_status_class,
    )
    env.globals["version"] = __version__
    return env


class Pages:
    """Renders a template into a hardened HTML answer."""

    def __init__(self) -> None:
        self.env = environment()

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def page(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> Response:
        context.setdefault("path", request.url.path)
        return harden(HTMLResponse(self.render(template, **context), status_code=status))
