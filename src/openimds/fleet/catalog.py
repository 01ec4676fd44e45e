"""Finding VMs in a large inventory: `GET /vms` with a search, filters and paging, and
the summary rows a console lists (docs/fleet.md, "Reading the inventory").

Each VM's row (a `Card`: the summary fields and one lower-case search text) is built
once per VM revision and kept until the fleet changes. A change swaps in new snapshots
of the VMs it touched (and a new `LiveInventory.vms` mapping), so only their cards are built
again; a request over ten thousand VMs then costs one substring test per VM, with no
record decoding and no JSON but that of the page it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from openimds.config.identity_model import Identities
from openimds.core.instance import Node
from openimds.core.vm import VmSnapshot
from openimds.inventory.live import LiveInventory
from openimds.web.admin_app import whole_number

View = Literal["full", "summary"]
VIEWS: Final[tuple[View, ...]] = ("full", "summary")
RATE_WINDOW: Final[float] = 60.0  # seconds of the request journal a summary's rate counts


class QueryError(ValueError):
    """A query parameter of GET /vms that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Card:
    """One VM as the list shows and searches it."""

    name: str
    revision: int
    vm_id: str
    size: str
    location: str
    group: str
    scale_set: str  # "" when the VM is in none
    addresses: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    system: bool
    user: int
    text: str  # lower case: what `q` searches

    def summary(self, rate: int | None) -> dict[str, object]:
        """The summary row; `rate` is its requests in the last minute (None: not known)."""
        return {
            "name": self.name,
            "vmId": self.vm_id,
            "vmSize": self.size,
            "location": self.location,
            "resourceGroupName": self.group,
            "scaleSet": self.scale_set or None,
            "addresses": list(self.addresses),
            "tags": dict(self.tags),
            "identities": {"system": self.system, "user": self.user},
            "rate": rate,
        }


def _text(node: Mapping[str, Node], key: str) -> str:
    value = node.get(key, "")
    return value if isinstance(value, str) else ""


def _tags(compute: Mapping[str, Node]) -> tuple[tuple[str, str], ...]:
    # tagsList holds what `tags` does ("k:v;k:v"), without the ambiguity of a ':' in a value.
    listed = compute.get("tagsList", ())
    items = listed if isinstance(listed, Sequence) and not isinstance(listed, str) else ()
    pairs = [(_text(t, "name"), _text(t, "value")) for t in items if isinstance(t, Mapping)]
    return tuple(pairs)


def card_of(vm: VmSnapshot, identities: Identities | None) -> Card:
    compute = vm.compute
    os_profile = compute.get("osProfile", {})
    computer = _text(os_profile, "computerName") if isinstance(os_profile, Mapping) else ""
    tags = _tags(compute)
    fields = [vm.name, _text(compute, "vmId"), computer, _text(compute, "resourceGroupName")]
    fields += [part for pair in tags for part in pair]
    fields += [*vm.addresses, _text(compute, "vmScaleSetName")]
    return Card(
        name=vm.name,
        revision=vm.revision,
        vm_id=_text(compute, "vmId"),
        size=_text(compute, "vmSize"),
        location=_text(compute, "location"),
        group=_text(compute, "resourceGroupName"),
        scale_set=_text(compute, "vmScaleSetName"),
        addresses=vm.addresses,
        tags=tags,
        system=identities is not None and identities.systemAssigned is not None,
        user=0 if identities is None else len(identities.userAssigned),
        # One line per field, so a search never matches across two of them.
        text="\n".join(fields).lower(),
    )


@dataclass(frozen=True, slots=True)
class Query:
    """GET /vms's parameters, checked. Text compares in lower case where Azure's names
    do (names, tag keys, scale sets); a tag's value and an address compare exactly."""

    q: str = ""
    tags: tuple[tuple[str, str | None], ...] = ()  # (key in lower case, value or any)
    scale_set: str = ""
    address: str = ""
    offset: int = 0
    limit: int | None = None
    view: View = "full"

    @property
    def filters(self) -> bool:
        return bool(self.q or self.tags or self.scale_set or self.address)

    def matches(self, card: Card) -> bool:
        if self.q and self.q not in card.text:
            return False
        if self.scale_set and card.scale_set.lower() != self.scale_set:
            return False
        if self.address and self.address not in card.addresses:
            return False
        return all(_has_tag(card, key, value) for key, value in self.tags)


def _has_tag(card: Card, key: str, value: str | None) -> bool:
    return any(k.lower() == key and (value is None or v == value) for k, v in card.tags)


def parse_query(params: Sequence[tuple[str, str]]) -> Query:
    """The parameters of GET /vms (others are ignored). An empty filter filters nothing;
    `tag` may be given several times (every one must match)."""
    given = dict(params)
    tags = []
    for raw in (value for name, value in params if name == "tag" and value):
        key, sep, value = raw.partition("=")
        tags.append((key.lower(), value if sep else None))
    view = given.get("view", "full")
    if view not in VIEWS:
        raise QueryError(f"view: expected one of {', '.join(VIEWS)}, got {view!r}")
    return Query(
        q=given.get("q", "").lower(),
        tags=tuple(tags),
        scale_set=given.get("scale_set", "").lower(),
        address=given.get("address", ""),
        offset=_whole(given, "offset") or 0,
        limit=_whole(given, "limit"),
        view=view,
    )


def _whole(given: Mapping[str, str], name: str) -> int | None:
    return whole_number(given, name, QueryError)


class Catalog:
    """The cards of a LiveInventory's VMs, sorted by name, kept until the fleet changes."""

    def __init__(self, inventory: LiveInventory) -> None:
        self.inventory = inventory
        self._seen: Mapping[str, VmSnapshot] | None = None
        self._cards: dict[str, Card] = {}
        self._sorted: list[Card] = []

    def cards(self) -> list[Card]:
        vms = self.inventory.vms
        # Every change installs a new mapping: identity says whether anything changed.
        if vms is not self._seen:
            self._refresh(vms)
        return self._sorted

    def search(self, query: Query) -> tuple[list[Card], int]:
        """The page of matching cards, and how many match in all."""
        cards = self.cards()
        found = [c for c in cards if query.matches(c)] if query.filters else cards
        end = None if query.limit is None else query.offset + query.limit
        return found[query.offset : end], len(found)

    def _refresh(self, vms: Mapping[str, VmSnapshot]) -> None:
        # A revision is never reused, so an equal one means the same snapshot.
        old = self._cards
        cards = {}
        for name, vm in vms.items():
            card = old.get(name)
            if card is None or card.revision != vm.revision:
                card = card_of(vm, self.inventory.identities(name))
            cards[name] = card
        self._cards = cards
        self._sorted = [cards[name] for name in sorted(cards)]
        self._seen = vms
