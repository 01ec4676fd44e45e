"""openimds inside tests: `serve()` runs a server for a block of code (in this process on
its own thread and loop, or as a subprocess), and the pytest plugin's `imds` fixture
does it per test (docs/testing.md).

    with openimds.testing.serve(vm={"name": "web-0"}) as imds:
        imds.fault(path="/metadata/instance", status=410, times=2)
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openimds.testing.embedded import Imds, ServerRefused, Serving

__all__ = ["Imds", "ServerRefused", "Serving", "serve"]


def serve(**options: Any) -> Serving:
    """A server as a context manager (`with`) and an async one (`async with`); see
    `openimds.testing.embedded.Serving` for the options."""
    from openimds.testing.embedded import Serving

    return Serving(**options)


def __getattr__(name: str) -> Any:
    # Imported on use, so `openimds.testing.feature` (loaded by every server) stays light.
    if name in ("Imds", "ServerRefused", "Serving"):
        from openimds.testing import embedded

        return getattr(embedded, name)
    raise AttributeError(name)
