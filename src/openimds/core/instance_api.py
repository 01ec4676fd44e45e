"""GET /metadata/instance[/route...]: the instance document, or the part a route names."""

from __future__ import annotations

from typing import ClassVar

from openimds.core.endpoint import BaseEndpoint, require_version
from openimds.core.formats import parse_format, render
from openimds.core.http import Request, Response
from openimds.core.instance import walk
from openimds.core.versions import INSTANCE_MIN
from openimds.core.vm import VmSnapshot


class InstanceEndpoint(BaseEndpoint):
    subpaths: ClassVar[bool] = True
    name: ClassVar[str] = "instance"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        version = require_version(request, INSTANCE_MIN)
        fmt = parse_format(request.param("format"), allow_text=True)
        # Unknown query parameters (cloud-init's `extended=true`) are ignored, as Azure does.
        route = request.segments()[2:]
        node = walk(vm.document(version), route)
        body, content_type = render(node, fmt)
        return Response(200, body, content_type, cacheable=True)
