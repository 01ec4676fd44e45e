from __future__ import annotations

from tests.support.server import RunningServer


def test_instance_document_over_http(live: RunningServer) -> None:
    r = live.get("/metadata/instance?api-version=2021-02-01")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.json()["compute"]["name"] == "demo-vm"


def test_admin_requires_token(live: RunningServer) -> None:
    import httpx

    assert httpx.get(live.admin_url + "/vms").status_code == 401
    assert live.admin("GET", "/vms").json()["vms"][0]["name"] == "demo-vm"
