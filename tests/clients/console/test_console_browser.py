"""The console in a real browser (Debian's headless Chromium): an operator signs in,
finds one VM among 1,000, reads its metadata at two api-versions, schedules a Reboot that
the VM sees and approves, and watches a curl request arrive live. Forged or missing
sessions get nothing."""

from __future__ import annotations

import re
import subprocess
import time

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.clients.console.browser import NARROW, metadata_get, sign_in
from tests.support.server import RunningServer

pytestmark = pytest.mark.slow

EVENTS = "/metadata/scheduledevents?api-version=2020-07-01"
VM = "node-0421"
SOURCE = "127.20.1.172"  # fleet_vm(421)'s address


def test_find_a_vm_among_a_thousand_and_open_it(page: Page, fleet: RunningServer) -> None:
    sign_in(page, fleet)
    expect(page.locator(".count")).to_contain_text("1000 VMs")
    page.get_by_label("Search").fill("0421")
    expect(page.locator("table.fleet tbody tr")).to_have_count(1)
    row = page.locator("table.fleet tbody tr").first
    expect(row).to_contain_text("pool-4")
    expect(row).to_contain_text(SOURCE)
    row.get_by_role("link", name=VM).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(VM)
    expect(page.locator("#instance-doc")).to_contain_text(
        '"vmId": "00000000-0000-4000-8000-000000000421"'
    )


def test_paging_and_filters_stay_on_the_server(page: Page, fleet: RunningServer) -> None:
    sign_in(page, fleet)
    page.get_by_label("Scale set").fill("pool-7")
    expect(page.locator(".count")).to_contain_text("100 VMs match")
    expect(page.locator("table.fleet tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Next").click()
    expect(page.locator(".count")).to_contain_text("page 2 of 2")
    expect(page.locator("table.fleet tbody tr").first).to_contain_text("node-0750")


def test_switching_api_versions_shows_fields_come_and_go(page: Page, fleet: RunningServer) -> None:
    sign_in(page, fleet, f"/console/vms/{VM}")
    document = page.locator("#instance-doc")
    expect(document).to_contain_text('"securityProfile"')
    page.get_by_label("api-version").select_option("2017-04-02")
    expect(document).not_to_contain_text('"securityProfile"')
    expect(page.locator("#absent")).to_contain_text("compute.securityProfile")
    # The page shows what the VM itself gets at that version.
    served = metadata_get(fleet, "/metadata/instance?api-version=2017-04-02", SOURCE)
    assert served.status_code == 200 and "securityProfile" not in served.text
    newest = page.locator("#api-version option").first.get_attribute("value")
    assert newest is not None
    page.get_by_label("api-version").select_option(newest)
    expect(document).to_contain_text('"securityProfile"')
    expect(page.locator("#absent")).to_contain_text("Nothing the newest version has is left out")


def test_a_reboot_scheduled_on_the_page_reaches_the_vm_and_starts_on_its_approval(
    page: Page, fleet: RunningServer
) -> None:
    sign_in(page, fleet, f"/console/events?vm={VM}")
    page.get_by_label("Type").select_option("Reboot")
    page.get_by_label("NotBefore").fill("+10m")
    page.get_by_label("Description").fill("kernel patch")
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Reboot scheduled.")
    expect(page.locator("#timeline .event")).to_have_count(1)
    expect(page.locator("#timeline .badge")).to_have_text("Scheduled")
    expect(page.locator("#timeline time[data-countdown]")).to_contain_text(
        re.compile(r"in (9|10) min")
    )

    seen = metadata_get(fleet, EVENTS, SOURCE).json()
    (event,) = seen["Events"]
    assert event["EventType"] == "Reboot" and event["Resources"] == [VM]
    assert event["Description"] == "kernel patch"

    approval = {"StartRequests": [{"EventId": event["EventId"]}]}
    transport = httpx.HTTPTransport(local_address=SOURCE)
    with httpx.Client(transport=transport) as client:
        posted = client.post(
            fleet.metadata_url + EVENTS, json=approval, headers={"Metadata": "true"}
        )
    assert posted.status_code == 200
    # Pushed to the open page: no reload.
    expect(page.locator("#timeline .badge")).to_have_text("Started", timeout=5_000)
    fleet.admin("POST", f"/events/{event['EventId']}/complete")


def test_a_curl_request_appears_in_the_live_log_within_a_second(
    page: Page, fleet: RunningServer
) -> None:
    sign_in(page, fleet, "/console/live")
    expect(page.locator("#live-state")).to_have_text("Live.")
    marker = (
        f"/metadata/instance/compute/name?api-version=2021-02-01&format=text&n={time.time_ns()}"
    )
    started = time.monotonic()
    subprocess.run(
        ["curl", "-s", "-H", "Metadata: true", "--interface", SOURCE, fleet.metadata_url + marker],
        check=True,
        capture_output=True,
    )
    row = page.locator("#live-rows tr", has_text=VM).first
    expect(row).to_be_visible(timeout=1_000)
    assert time.monotonic() - started < 1.5
    expect(row).to_contain_text("/metadata/instance/compute/name")
    expect(row).to_contain_text("200")


def test_errors_are_highlighted_in_the_live_log(page: Page, fleet: RunningServer) -> None:
    sign_in(page, fleet, "/console/live?status=4xx")
    expect(page.locator("#live-state")).to_have_text("Live.")
    bad, good = f"/metadata/bad-{time.time_ns()}", f"/metadata/versions?n={time.time_ns()}"
    assert metadata_get(fleet, bad, SOURCE).status_code == 400
    assert metadata_get(fleet, good, SOURCE).status_code == 200
    row = page.locator("#live-rows tr", has_text=bad)
    expect(row).to_have_class(re.compile("s4xx"))
    expect(page.locator("#live-rows tr", has_text="/metadata/versions")).to_have_count(0)


def test_without_a_session_nothing_is_shown(browser: Browser, fleet: RunningServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        for path in ("/console/fleet", f"/console/vms/{VM}", "/console/keys"):
            page.goto(fleet.admin_url + path)
            expect(page).to_have_url(re.compile(r"/console/login\?next="))
            expect(page.locator("main")).not_to_contain_text(VM)
        answer = page.request.post(fleet.admin_url + "/console/keys/rotate")
        assert answer.status == 401
    finally:
        context.close()


def test_a_forged_csrf_token_is_refused(page: Page, fleet: RunningServer) -> None:
    keys_before = fleet.admin("GET", "/identity/keys").json()["keys"]
    sign_in(page, fleet, "/console/keys")
    page.on("dialog", lambda dialog: dialog.accept())
    rotate_form = page.locator('form[action="/console/keys/rotate"] input[name="csrf"]')
    rotate_form.evaluate("(input) => { input.value = 'forged' }")
    page.get_by_role("button", name="Rotate signing key").click()
    expect(page.locator("main")).to_contain_text("CSRF token is missing or wrong")
    assert fleet.admin("GET", "/identity/keys").json()["keys"] == keys_before


def test_rotating_a_key_asks_first(page: Page, fleet: RunningServer) -> None:
    before = {k["kid"] for k in fleet.admin("GET", "/identity/keys").json()["keys"]}
    sign_in(page, fleet, "/console/keys")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Rotate signing key").click()
    assert {k["kid"] for k in fleet.admin("GET", "/identity/keys").json()["keys"]} == before
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate signing key").click()
    expect(page.locator(".flash")).to_contain_text("is active")
    after = fleet.admin("GET", "/identity/keys").json()["keys"]
    assert len(after) == len(before) + 1


def test_the_keyboard_reaches_everything(page: Page, fleet: RunningServer) -> None:
    page.goto(fleet.admin_url + "/console/login")
    expect(page.get_by_label("Admin token")).to_be_focused()  # autofocus
    page.keyboard.type(fleet.admin_token)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/fleet")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.get_by_label("Search").focus()
    page.keyboard.type(VM)
    expect(page.locator("table.fleet tbody tr")).to_have_count(1)
    link = page.get_by_role("link", name=VM)
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(VM)


def test_pages_fit_a_phone(browser: Browser, fleet: RunningServer) -> None:
    context = browser.new_context(viewport=NARROW)
    page = context.new_page()
    try:
        sign_in(page, fleet)
        for path in (
            "/console/fleet",
            f"/console/vms/{VM}",
            "/console/live",
            "/console/events",
            "/console/keys",
            "/console/faults",
        ):
            page.goto(fleet.admin_url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= NARROW["width"], f"{path} is {width} px wide"
    finally:
        context.close()


def test_the_charts_draw_the_last_minutes(page: Page, fleet: RunningServer) -> None:
    for _ in range(5):
        metadata_get(fleet, "/metadata/instance?api-version=2021-02-01", SOURCE)
    sign_in(page, fleet, "/console/live")
    for chart in ("#chart-routes", "#chart-latency", "#chart-throttled"):
        expect(page.locator(f"{chart} canvas")).to_be_visible()
    expect(page.locator("#chart-routes .u-legend")).to_contain_text("instance")


def test_a_drill_started_and_canceled_from_the_page(page: Page, fleet: RunningServer) -> None:
    vm = "node-0333"
    sign_in(page, fleet, f"/console/events?vm={vm}")
    page.get_by_label("Drill").select_option("user-reboot")
    page.get_by_role("button", name="Start drill").click()
    expect(page.locator(".flash")).to_contain_text("Drill user-reboot started.")
    events = [e for e in fleet.admin("GET", "/events").json()["events"] if vm in e["vms"]]
    assert [e["type"] for e in events] == ["Reboot"]
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f'li[data-event="{events[0]["eventId"]}"]').get_by_role(
        "button", name="Cancel"
    ).click()
    expect(page.locator(".flash")).to_contain_text("cancel sent")
    assert not [e for e in fleet.admin("GET", "/events").json()["events"] if vm in e["vms"]]


def test_fault_rules_added_and_cleared_from_the_page(page: Page, fleet: RunningServer) -> None:
    sign_in(page, fleet, "/console/faults")
    page.get_by_label("VM", exact=True).fill(VM)
    page.get_by_label("Path (glob)").fill("/metadata/versions")
    page.get_by_label("Status").fill("503")
    page.get_by_label("Fire this many times").fill("2")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator(".flash")).to_contain_text("Fault rule added.")
    statuses = [metadata_get(fleet, "/metadata/versions", SOURCE).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    page.reload()
    row = page.locator("tbody tr", has_text="/metadata/versions")
    expect(row).to_contain_text("2")  # hits
    expect(row).to_contain_text("spent")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove every rule").click()
    expect(page.locator("main")).to_contain_text("No rule is active.")
    assert fleet.admin("GET", "/faults").json()["rules"] == []
