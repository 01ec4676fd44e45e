"""GET /metadata/loadbalancer. The error messages are verbatim from the error-code table
of Azure's docs on load balancer metadata."""

from __future__ import annotations

from typing import ClassVar

from openimds.core.endpoint import BaseEndpoint, require_version
from openimds.core.errors import BadRequest, NotFound
from openimds.core.formats import parse_format, to_json
from openimds.core.http import Request, Response
from openimds.core.versions import LOADBALANCER_MIN
from openimds.core.vm import VmSnapshot

_KNOWN_PARAMS = frozenset({"api-version", "format"})


class UnexpectedRequest(BadRequest):
    message = "Unexpected request. Check the query parameters and retry."


class NoLoadBalancer(NotFound):
    message = (
        "No load balancer metadata is found. Check if your virtual machine is using any "
        "nonbasic SKU load balancer and retry later."
    )


class LoadBalancerEndpoint(BaseEndpoint):
    name: ClassVar[str] = "loadbalancer"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        if any(key not in _KNOWN_PARAMS for key, _ in request.query):
            raise UnexpectedRequest()
        require_version(request, LOADBALANCER_MIN)
        parse_format(request.param("format"), allow_text=False)
        if vm.loadbalancer is None:
            raise NoLoadBalancer()
        return Response(200, to_json({"loadbalancer": vm.loadbalancer}), cacheable=True)
