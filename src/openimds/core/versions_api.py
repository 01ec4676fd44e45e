"""GET /metadata/versions: needs no api-version; lists every general one, oldest first."""

from __future__ import annotations

from typing import ClassVar

from openimds.core.endpoint import BaseEndpoint
from openimds.core.formats import parse_format, to_json
from openimds.core.http import Request, Response
from openimds.core.versions import GENERAL_VERSIONS
from openimds.core.vm import VmSnapshot

_BODY = to_json({"apiVersions": list(GENERAL_VERSIONS)})


class VersionsEndpoint(BaseEndpoint):
    name: ClassVar[str] = "versions"

    def handle(self, request: Request, vm: VmSnapshot, now: float) -> Response:
        parse_format(request.param("format"), allow_text=False)
        return Response(200, _BODY, cacheable=True)
