"""What a VM would get from the metadata listener, for the admin API: the metadata
preview (`GET /vms/{name}/metadata`) and the attested document check
(`GET /vms/{name}/attested`).

The request is built as the listener builds it (`web.metadata.wire.core_request`, with
`Metadata: true`) and answered by the same dispatcher, so the bytes are the listener's.
Only the listener around the core is left out: no budget is taken, nothing is journaled,
no fault rule or byte cache is consulted, and no effect is applied (a GET returns none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from openimds.core.dispatch import Dispatcher
from openimds.core.http import Request, Response
from openimds.core.instance import absent
from openimds.core.versions import LATEST
from openimds.core.vm import VmSnapshot
from openimds.inventory.live import LiveInventory
from openimds.web.metadata.wire import core_request

if TYPE_CHECKING:
    from openimds.runtime import Runtime

METADATA = ("metadata",)
INSTANCE = ("metadata", "instance")
TOKEN = ("metadata", "identity", "oauth2", "token")
# What a path may hold as it is given; anything else (spaces, non-ASCII) is
# percent-encoded, as an HTTP client would send it.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class PreviewRefused(ValueError):
    """A preview that is not given: not a metadata path, or a token (never shown)."""


class MetadataPreview:
    """Answers for a VM from the metadata dispatcher, without its listener."""

    def __init__(
        self,
        inventory: LiveInventory,
        dispatcher: Callable[[], Dispatcher],
        clock: Callable[[], float],
    ) -> None:
        self.inventory = inventory
        # Built on first use: the features that add endpoints install after the fleet feature.
        self._make_dispatcher = dispatcher
        self._dispatcher: Dispatcher | None = None
        self.clock = clock

    @classmethod
    def of(cls, runtime: Runtime) -> MetadataPreview:
        """Over a server's inventory, endpoints and clock (the `now` its listener uses)."""
        return cls(runtime.inventory, runtime.dispatcher, runtime.clock.now)

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = self._make_dispatcher()
        return self._dispatcher

    def request(self, vm: VmSnapshot, path: str, params: Sequence[tuple[str, str]]) -> Request:
        """GET `path?params` with `Metadata: true`, as the listener would hand it on; a
        path outside /metadata, or the token endpoint, is refused."""
        if not path.startswith("/") or "?" in path or "#" in path:
            raise PreviewRefused(f"path: expected a path such as /metadata/instance, got {path!r}")
        target = quote(path, safe=_PATH_SAFE) + ("?" + urlencode(params) if params else "")
        peer = vm.addresses[0] if vm.addresses else ""
        request = core_request("GET", target.encode(), [(b"Metadata", b"true")], b"", peer)
        segments = request.segments()
        if segments[:1] != METADATA:
            raise PreviewRefused(f"path: only /metadata paths are previewed, got {path!r}")
        if segments[: len(TOKEN)] == TOKEN:
            raise PreviewRefused(
                "path: tokens are never shown; GET /vms/{name}/identities/claims gives "
                "the claims a token would carry"
            )
        return request

    def answer(self, vm: VmSnapshot, request: Request) -> Response:
        return self.dispatcher.handle(request, vm, self.clock())

    def get(self, vm: VmSnapshot, path: str, params: Sequence[tuple[str, str]]) -> Response:
        return self.answer(vm, self.request(vm, path, params))


def absent_fields(vm: VmSnapshot, request: Request, response: Response) -> list[str]:
    """For a served full instance document: the fields the newest api-version's document
    of this VM has and the requested version leaves out; [] for anything else."""
    version = request.param("api-version")
    if response.status != 200 or request.segments() != INSTANCE or version is None:
        return []
    return absent(vm.document(LATEST), vm.document(version))
