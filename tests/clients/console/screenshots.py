"""Screenshots of every console page at 1280 and 390 px, for docs/console/ (the README
shows them). Starts its own server with a fleet and some activity to show:
`scripts/screenshots [DIR]`."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser

from tests.clients.console.browser import (
    NARROW,
    WIDE,
    chromium,
    metadata_get,
    sign_in,
    start_fleet_server,
)
from tests.support.server import RunningServer

VM = "node-0421"
SOURCE = "127.20.1.172"
PAGES = {
    "login": "/console/login",
    "fleet": "/console/fleet",
    "vm": f"/console/vms/{VM}",
    "live": "/console/live",
    "events": "/console/events",
    "keys": "/console/keys",
    "faults": "/console/faults",
}


def activity(server: RunningServer) -> None:
    """Something on every page: events in two scale sets, a fault, requests of every kind."""
    server.admin(
        "POST",
        "/events",
        json={
            "type": "Reboot",
            "target": f"vm:{VM}",
            "notBefore": "+15m",
            "description": "Host OS update",
        },
    )
    server.admin(
        "POST", "/events", json={"type": "Freeze", "target": "scaleSet:pool-7", "notBefore": "+5m"}
    )
    server.admin(
        "POST", "/events/drill", json={"drill": "spot-eviction", "vm": "node-0007", "dev": False}
    )
    server.admin(
        "POST",
        "/faults",
        json={"vm": "node-0100", "path": "/metadata/identity/*", "status": 500, "times": 3},
    )
    paths = [
        "/metadata/instance?api-version=2021-02-01",
        "/metadata/instance/compute/vmSize?api-version=2021-02-01&format=text",
        "/metadata/versions",
        "/metadata/instance",  # no api-version: 400
        "/metadata/scheduledevents?api-version=2020-07-01",
    ]
    for second in range(6):
        for n, path in enumerate(paths * 3):
            index = (n * 37 + second * 11) % 1000
            metadata_get(server, path, f"127.20.{index // 250}.{index % 250 + 1}")
        time.sleep(1)
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.20.0.101")) as client:
        client.get(
            server.metadata_url
            + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
            headers={"Metadata": "true"},
        )


def shoot(browser: Browser, server: RunningServer, out: Path) -> list[Path]:
    written = []
    for label, viewport in (("1280", WIDE), ("390", NARROW)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(server.admin_url + PAGES["login"])
        shot = out / f"login-{label}.png"
        page.screenshot(path=str(shot))
        written.append(shot)
        sign_in(page, server)
        for name, path in PAGES.items():
            if name == "login":
                continue
            page.goto(server.admin_url + path)
            if name == "live":
                page.wait_for_selector("#live-state:text('Live.')")
                page.wait_for_timeout(1500)  # a chart point or two pushed
            shot = out / f"{name}-{label}.png"
            page.screenshot(path=str(shot))
            written.append(shot)
        context.close()
    return written


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_fleet_server(Path(tmp), 1000)
        try:
            activity(server)
            for browser in chromium():
                for shot in shoot(browser, server, out):
                    print(shot)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
