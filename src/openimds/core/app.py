"""The metadata API as one dispatcher: every endpoint at its path."""

from __future__ import annotations

from collections.abc import Iterable

from openimds.core.dispatch import Dispatcher
from openimds.core.endpoint import Endpoint
from openimds.core.instance_api import InstanceEndpoint
from openimds.core.loadbalancer_api import LoadBalancerEndpoint
from openimds.core.versions_api import VersionsEndpoint


def standard_endpoints() -> list[tuple[str, Endpoint]]:
    """The endpoints every server has, whatever features it runs."""
    return [
        ("/metadata/instance", InstanceEndpoint()),
        ("/metadata/versions", VersionsEndpoint()),
        ("/metadata/loadbalancer", LoadBalancerEndpoint()),
    ]


def build_dispatcher(extra: Iterable[tuple[str, Endpoint]] = ()) -> Dispatcher:
    """The standard endpoints plus any the features plug in (identity, attested, events)."""
    return Dispatcher([*standard_endpoints(), *extra])
