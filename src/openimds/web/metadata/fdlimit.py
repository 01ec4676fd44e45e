"""The open-file limit a server needs: one descriptor per connection it may hold.

Many systems start processes with a soft limit of 1024, far below `server.max_connections`;
the hard limit is usually much higher and a process may raise its own soft limit to it.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("openimds")

# Descriptors kept for everything that is not a metadata connection: the listening
# sockets, the store, log files, admin connections, the event loop's own.
RESERVE = 256


def connection_budget(wanted: int) -> int:
    """Raise the soft open-file limit toward the hard one and return how many connections
    fit in it (at most `wanted`); say so once when that is fewer than wanted."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + RESERVE
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    fit = max(1, soft - RESERVE)
    log.warning(
        "server.max_connections is %d but the open-file limit (%d, hard %d) leaves room "
        "for %d; connections beyond that are refused (raise it with ulimit -n or "
        "LimitNOFILE=)",
        wanted,
        soft,
        hard,
        fit,
    )
    return fit
