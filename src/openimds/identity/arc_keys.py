"""Azure Arc's challenge key files: core.arc_api.ChallengeBook over a real folder.

Each unauthenticated token request gets a fresh secret in a fresh file
`<folder>/<random>.key`, mode 0600: only a process that may read that folder's files
(root, or the server's own user) can answer the challenge, which is the point of Arc's
scheme. A secret answers once; unanswered ones expire after LIFETIME seconds and their
files are removed, as are all of them at shutdown. Only the SHA-256 of a secret is kept;
a presented secret's digest is compared with each in constant time. Nothing is logged
but a file that cannot be removed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from openimds.config.errors import ConfigError
from openimds.config.hosts_model import ARC_KEY_FOLDER

log = logging.getLogger("openimds")

LIFETIME = 60.0  # seconds a challenge may wait for its answer
LIMIT = 256  # challenges outstanding at once; the oldest goes first beyond it


def prepare_folder(folder: str) -> None:
    """The key folder exists and this process can write it, or a ConfigError says what to
    do. Creating it (and its parents) needs root for the default /var/opt path."""
    path = Path(folder)
    if not path.is_dir():
        if os.geteuid() != 0:
            raise ConfigError(_advice(folder, "does not exist"))
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(_advice(folder, "is not writable by this user"))


def _advice(folder: str, problem: str) -> str:
    other = (
        ""
        if folder != ARC_KEY_FOLDER
        else " Clients that read the key file from the path in the challenge as given "
        "(MSAL.NET) also work with another folder: set hosts.arc.key_folder."
    )
    return (
        f"hosts.arc: the key folder {folder} {problem}. Run openimds as root (it creates "
        f"the folder, mode 0700), or create it writable by this user. azure-identity and "
        f"msal for Python read key files only from {ARC_KEY_FOLDER}.{other}"
    )


class KeyFileChallenges:
    def __init__(
        self,
        folder: str,
        clock: Callable[[], float] = time.monotonic,
        lifetime: float = LIFETIME,
        limit: int = LIMIT,
    ) -> None:
        self.folder = Path(folder)
        self.clock = clock
        self.lifetime = lifetime
        self.limit = limit
        # SHA-256 of the secret -> (its key file, when it expires); oldest first.
        self._pending: dict[bytes, tuple[Path, float]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def issue(self) -> str:
        self.prune()
        while len(self._pending) >= self.limit:
            self._drop(next(iter(self._pending)))
        secret = secrets.token_hex(32)
        # A random name, and no "=": clients split the realm at "=".
        path = self.folder / f"{secrets.token_hex(16)}.key"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(path, flags, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret)  # no newline: clients send the contents as they are
        self._pending[_digest(secret)] = (path, self.clock() + self.lifetime)
        return str(path)

    def redeem(self, secret: str) -> bool:
        # Every outstanding digest is compared in constant time (at most LIMIT of them).
        digest = _digest(secret)
        match = next((d for d in self._pending if hmac.compare_digest(d, digest)), None)
        if match is None:
            return False
        _, until = self._pending[match]
        self._drop(match)  # one use, whether in time or not
        return until > self.clock()

    def prune(self) -> None:
        """Forget expired challenges and remove their files (a tick job)."""
        now = self.clock()
        for digest in [d for d, (_, until) in self._pending.items() if until <= now]:
            self._drop(digest)

    def close(self) -> None:
        """Remove every outstanding key file (at shutdown)."""
        for digest in list(self._pending):
            self._drop(digest)

    def _drop(self, digest: bytes) -> None:
        path, _ = self._pending.pop(digest)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove Arc key file %s: %s", path, exc.strerror)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()
