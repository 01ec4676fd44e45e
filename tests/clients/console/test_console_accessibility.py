"""axe-core, run inside every console page at both widths: no serious or critical
violation (WCAG 2 A/AA rules and axe's best practices)."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, ViewportSize

from tests.clients.console.browser import NARROW, WIDE, sign_in
from tests.support.server import RunningServer

pytestmark = pytest.mark.slow

PAGES = (
    "/console/login",
    "/console/fleet",
    "/console/vms/node-0421",
    "/console/live",
    "/console/events",
    "/console/keys",
    "/console/faults",
)
SEVERE = {"serious", "critical"}


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1280px", "390px"])
def test_no_serious_accessibility_violation(
    browser: Browser, fleet: RunningServer, viewport: ViewportSize
) -> None:
    fleet.admin(
        "POST", "/events", json={"type": "Reboot", "target": "vm:node-0421", "notBefore": "+1h"}
    )
    fleet.admin("POST", "/faults", json={"path": "/metadata/versions", "status": 503})
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    axe = Axe()
    found: dict[str, list[str]] = {}
    try:
        for path in PAGES:
            if path == "/console/login":
                page.goto(fleet.admin_url + path)
            else:
                if "/login" in page.url or page.url == "about:blank":
                    sign_in(page, fleet)
                page.goto(fleet.admin_url + path)
            results = axe.run(page)
            severe = [
                f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} element(s)"
                for v in results.response["violations"]
                if v.get("impact") in SEVERE
            ]
            if severe:
                found[path] = severe
    finally:
        context.close()
        fleet.admin("DELETE", "/faults")
    assert found == {}
