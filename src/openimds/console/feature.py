"""The operator console, plugged into a server (features.ALL): its pages on the admin
listener (docs/console.md). It holds no state of its own but the login sessions."""

from __future__ import annotations

from openimds.console.admin import ConsoleAdmin
from openimds.console.auth import Door
from openimds.console.pages import ConsolePages
from openimds.console.render import Pages
from openimds.console.streams import Streams
from openimds.runtime import Plug, Runtime


def install(runtime: Runtime) -> Plug:
    if not runtime.config.admin.console:
        return Plug()
    rendered = Pages()
    door = Door(
        runtime.admin_token,
        rendered,
        runtime.login_guard,
        secure=runtime.admin_tls is not None,
    )
    pages = ConsolePages(rendered)
    streams = Streams(rendered, pages, stopping=lambda: runtime.stopping)
    return Plug(admin=[ConsoleAdmin(door, pages, streams)])
