"""Fixtures of the console's browser tests: one Chromium per module, one server with
a fleet of 1,000 VMs per module, a fresh page per test that is photographed on failure
(into $OPENIMDS_SCREENSHOTS, default ./test-results/console)."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.clients.console.browser import WIDE, chromium, start_fleet_server
from tests.support.server import RunningServer

FLEET = 1000
FAILURES = Path(os.environ.get("OPENIMDS_SCREENSHOTS", "test-results/console"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: while Playwright's sync API runs it holds an event
    # loop in this thread, and later tests that call asyncio.run() would find it running.
    yield from chromium()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_fleet_server(tmp_path_factory.mktemp("console-fleet"), FLEET)
    yield server
    server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    page = getattr(item, "console_page", None)
    if report.failed and page is not None and not page.is_closed():
        FAILURES.mkdir(parents=True, exist_ok=True)
        shot = FAILURES / f"{item.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        report.sections.append(("console screenshot", str(shot.resolve())))
    return report


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=WIDE)
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    request.node.console_page = opened
    yield opened
    context.close()
