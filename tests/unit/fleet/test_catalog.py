"""Finding VMs: summary rows, the search text, filters, paging, the query's checks, and
cards kept until the fleet changes (only changed VMs' cards built again)."""

from __future__ import annotations

from typing import Any

import pytest

from openimds.config.vm_model import VmSpec
from openimds.fleet.catalog import Catalog, Query, QueryError, card_of, parse_query
from openimds.inventory.live import LiveInventory

USER = "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/rg/providers/"
USER += "Microsoft.ManagedIdentity/userAssignedIdentities/"


def vm(name: str, address: str, identities: Any = None, **compute: Any) -> VmSpec:
    data: dict[str, Any] = {
        "name": name,
        "addresses": [address],
        "instance": {"compute": {"name": name, **compute}},
    }
    if identities is not None:
        data["identities"] = identities
    return VmSpec.model_validate(data)


def inventory() -> LiveInventory:
    return LiveInventory(
        [
            vm(
                "web-2",
                "10.0.0.2",
                {"systemAssigned": True, "userAssigned": [{"resourceId": USER + "a"}]},
                vmSize="Standard_B2s",
                location="westeurope",
                resourceGroupName="Shop-RG",
                vmScaleSetName="WebSet",
                tags="Env:Prod;team:blue",
                osProfile={"computerName": "webhost000002"},
            ),
            vm("web-1", "10.0.0.1", vmScaleSetName="webset", tags="env:dev"),
            vm(
                "db-1",
                "10.0.0.3",
                {"systemAssigned": True},
                resourceGroupName="data",
                vmId="6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
            ),
        ]
    )


def names(catalog: Catalog, **params: str) -> tuple[list[str], int]:
    cards, total = catalog.search(parse_query(list(params.items())))
    return [c.name for c in cards], total


def test_a_summary_row_has_the_fields_a_console_lists() -> None:
    web = inventory()
    row = card_of(web.vms["web-2"], web.identities("web-2")).summary(7)
    assert row == {
        "name": "web-2",
        "vmId": web.vms["web-2"].compute["vmId"],
        "vmSize": "Standard_B2s",
        "location": "westeurope",
        "resourceGroupName": "Shop-RG",
        "scaleSet": "WebSet",
        "addresses": ["10.0.0.2"],
        "tags": {"Env": "Prod", "team": "blue"},
        "identities": {"system": True, "user": 1},
        "rate": 7,
    }
    bare = card_of(web.vms["web-1"], web.identities("web-1")).summary(None)
    assert bare["identities"] == {"system": False, "user": 0}
    assert bare["rate"] is None


def test_without_parameters_every_vm_sorted_by_name() -> None:
    assert names(Catalog(inventory())) == (["db-1", "web-1", "web-2"], 3)


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("WEB-", ["web-1", "web-2"]),  # name, any case
        ("webhost0000", ["web-2"]),  # computerName
        ("shop-rg", ["web-2"]),  # resource group
        ("prod", ["web-2"]),  # a tag value
        ("TEAM", ["web-2"]),  # a tag key
        ("10.0.0.3", ["db-1"]),  # an address
        ("webset", ["web-1", "web-2"]),  # the scale set
        ("nothing-like-it", []),
    ],
)
def test_q_searches_every_listed_field_in_any_case(q: str, found: list[str]) -> None:
    assert names(Catalog(inventory()), q=q)[0] == found


def test_q_finds_a_vm_id_and_never_matches_across_two_fields() -> None:
    web = inventory()
    assert names(Catalog(web), q="6F1C2D3E-4A5B")[0] == ["db-1"]
    # "data" ends one field and "10.0" starts the next: not one text.
    assert names(Catalog(web), q="data10.0")[0] == []


def test_filters_tag_scale_set_and_address() -> None:
    catalog = Catalog(inventory())
    assert names(catalog, tag="env")[0] == ["web-1", "web-2"]  # key in any case
    assert names(catalog, tag="env=dev")[0] == ["web-1"]
    assert names(catalog, tag="env=prod")[0] == []  # a value compares exactly
    assert names(catalog, scale_set="WEBSET")[0] == ["web-1", "web-2"]
    assert names(catalog, address="10.0.0.2")[0] == ["web-2"]
    assert names(catalog, address="10.0.0")[0] == []  # exact, not a substring
    every = parse_query([("tag", "env"), ("tag", "team=blue")])  # all must match
    assert [c.name for c in catalog.search(every)[0]] == ["web-2"]


def test_paging_counts_every_match() -> None:
    catalog = Catalog(inventory())
    assert names(catalog, offset="1", limit="1") == (["web-1"], 3)
    assert names(catalog, q="web", offset="1") == (["web-2"], 2)
    assert names(catalog, offset="5") == ([], 3)
    assert names(catalog, limit="0") == ([], 3)


def test_the_query_is_checked_and_defaults_to_everything() -> None:
    assert parse_query([]) == Query()
    assert parse_query([("q", ""), ("tag", ""), ("other", "x")]) == Query()
    assert parse_query([("view", "summary"), ("limit", "50")]) == Query(view="summary", limit=50)
    for name, value in [("offset", "-1"), ("limit", "1.5"), ("limit", "²"), ("offset", "")]:
        with pytest.raises(QueryError, match=rf"^{name}: expected a whole number"):
            parse_query([(name, value)])
    for view in ("rows", ""):
        with pytest.raises(QueryError, match=r"^view: expected one of full, summary"):
            parse_query([("view", view)])


def test_cards_are_built_again_only_for_the_vms_that_changed() -> None:
    web = inventory()
    catalog = Catalog(web)
    before = {c.name: c for c in catalog.cards()}
    assert catalog.cards() is catalog.cards()  # no change, nothing rebuilt
    web.put([vm("web-1", "10.0.0.1", tags="env:test")])
    after = {c.name: c for c in catalog.cards()}
    assert after["db-1"] is before["db-1"] and after["web-2"] is before["web-2"]
    assert after["web-1"] is not before["web-1"]
    assert names(catalog, tag="env=test")[0] == ["web-1"]
    web.remove(["db-1"])
    assert names(catalog) == (["web-1", "web-2"], 2)
