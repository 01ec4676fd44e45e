"""Debian's headless Chromium, driven by Playwright (no browser is downloaded: the
executable is the system's), and a console server with a fleet to look at."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.support.server import RunningServer, start_server

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that reaches out: the machine may have no network at all.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WIDE: ViewportSize = {"width": 1280, "height": 900}
NARROW: ViewportSize = {"width": 390, "height": 844}


def chromium() -> Iterator[Browser]:
    path = shutil.which("chromium") or CHROMIUM
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def fleet_vm(index: int) -> dict[str, Any]:
    """VM `index` of the test fleet: 127.20.x.y, scale sets of 100, a tag per tenth."""
    name = f"node-{index:04d}"
    return {
        "name": name,
        "addresses": [f"127.20.{index // 250}.{index % 250 + 1}"],
        "instance": {
            "compute": {
                "name": name,
                "location": "westeurope" if index % 2 else "northeurope",
                "vmSize": "Standard_D2s_v5" if index % 3 else "Standard_B2s",
                "vmId": f"00000000-0000-4000-8000-{index:012d}",
                "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
                "resourceGroupName": "lab",
                "vmScaleSetName": f"pool-{index // 100}",
                "osType": "Linux",
                "tagsList": [{"name": "team", "value": f"team-{index % 10}"}],
            }
        },
        "identities": {"systemAssigned": True},
    }


def start_fleet_server(tmp: Path, count: int) -> RunningServer:
    config = tmp / "fleet.json"
    config.write_text(json.dumps({"vms": [fleet_vm(i) for i in range(count)]}))
    return start_server(tmp, config=str(config), rate_limit="0", timeout=60)


def sign_in(page: Page, server: RunningServer, target: str = "/console/") -> None:
    page.goto(f"{server.admin_url}{target}")
    page.get_by_label("Admin token").fill(server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{target if target != '/console/' else '/console/fleet'}*")


def metadata_get(server: RunningServer, path: str, source: str) -> httpx.Response:
    """A GET to the metadata listener from a VM's own source address (127.20.x.y)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport) as client:
        return client.get(server.metadata_url + path, headers={"Metadata": "true"})
