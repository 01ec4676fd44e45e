"""The console's pure helpers: the events timeline's grouping, the CA chain as shown,
and where a form may send the browser back to."""

from __future__ import annotations

from typing import Any

from openimds.console.auth import _next
from openimds.console.pages import certificate_chain, group_events
from openimds.crypto.ca import pem
from tests.support.pkcs7 import backdated_ca


def _event(event_id: str, *vms: str, awaiting: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"eventId": event_id, "vms": list(vms), "awaiting": list(awaiting)}


def test_events_are_grouped_by_scale_set_once_each_with_loose_vms_last() -> None:
    events = [
        _event("e1", "web-1", "db-1", "web-0", awaiting=("web-1", "db-1")),
        _event("e2", "web-0"),
        _event("e3", "lone"),
    ]
    scale_sets = {"web-0": "web", "web-1": "web", "db-1": "db", "lone": None}
    groups = group_events(events, scale_sets)
    assert [g["scaleSet"] for g in groups] == ["db", "web", None]
    web = groups[1]["events"]
    assert [e["eventId"] for e in web] == ["e1", "e2"]  # e1 once, for both web VMs
    assert web[0]["groupVms"] == ["web-0", "web-1"]
    assert web[0]["groupAwaiting"] == ["web-1"]
    assert groups[0]["events"][0]["groupAwaiting"] == ["db-1"]
    assert groups[2]["events"][0]["groupVms"] == ["lone"]


def test_the_chain_is_root_first_with_names_and_validity() -> None:
    ca = backdated_ca()
    assert ca.root is not None
    shown = certificate_chain(
        {"root": pem(ca.root), "intermediates": [pem(c) for c in ca.intermediates]}
    )
    assert len(shown) == 1 + len(ca.intermediates)
    assert shown[0]["subject"] == shown[0]["issuer"]  # self-signed root
    assert shown[1]["issuer"] == shown[0]["subject"]
    assert all(c["notAfter"] > c["notBefore"] for c in shown)
    assert all(c["pem"].startswith("-----BEGIN CERTIFICATE-----") for c in shown)
    assert certificate_chain({"root": None, "intermediates": []}) == []


def test_after_login_the_browser_only_goes_to_a_console_page() -> None:
    assert _next({"next": "/console/vms/a"}) == "/console/vms/a"
    for hostile in (
        "https://evil.example/",
        "//evil.example/console/",
        "/console//evil",
        "/metrics",
    ):
        assert _next({"next": hostile}) == "/console/"
    assert _next({}) == "/console/"
