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


def connection_budget(wanted: int, listeners: int = 1, *, configured: bool = True) -> int:
    """Raise the soft open-file limit toward the hard one and return how many connections
    per listener fit in it (at most `wanted`, for each of `listeners`); say so once when
    that is fewer than wanted: a warning when `server.max_connections` was set, else an
    info line (the default asks for more than many systems allow, and nobody chose it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted * listeners + RESERVE
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    fit = max(1, (soft - RESERVE) // listeners)
    each = f" on each of {listeners} listeners" if listeners > 1 else ""
    log.log(
        logging.WARNING if configured else logging.INFO,
        "server.max_connections is %d%s%s but the open-file limit (%d, hard %d) leaves room "
        "for %d each; connections beyond that are refused (raise it with ulimit -n or "
        "LimitNOFILE=)",
        wanted,
        "" if configured else " (the default)",
        each,
        soft,
        hard,
        fit,
    )
    return fit
