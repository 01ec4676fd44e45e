"""Where the signing certificate's AIA URL points, derived from the configuration; the
worker that prepares the CA's keys."""

from __future__ import annotations

import os
import threading

import pytest

from openimds.attested.feature import _prepare, issuer_url
from openimds.config import load_config
from openimds.crypto.ca import Cloud


@pytest.mark.parametrize(
    ("admin", "base", "url"),
    [
        ("127.0.0.1:8081", None, "http://127.0.0.1:8081/attested/intermediate.crt"),
        ("0.0.0.0:9000", None, "http://127.0.0.1:9000/attested/intermediate.crt"),
        ("[::]:9000", None, "http://[::1]:9000/attested/intermediate.crt"),
        ("[::1]:9000", None, "http://[::1]:9000/attested/intermediate.crt"),
        ("127.0.0.1:0", None, None),  # known only after binding
        ("unix:/run/openimds/admin.sock", None, None),
        (
            "unix:/run/openimds/admin.sock",
            "http://10.0.0.1:8081/",
            "http://10.0.0.1:8081/attested/intermediate.crt",
        ),
        ("127.0.0.1:0", "https://ca.test", "https://ca.test/attested/intermediate.crt"),
    ],
)
def test_issuer_url(admin: str, base: str | None, url: str | None) -> None:
    flags = {"admin.listen": admin, "attested.issuer_base_url": base}
    assert issuer_url(load_config(None, env={}, flags=flags)) == url


def test_the_key_worker_takes_only_idle_cpu() -> None:
    # Key generation on the worker must not slow the start or the listener on a server
    # with one core: the worker thread runs at the lowest priority, the rest does not.
    seen: list[int] = []

    class Probe:
        def prepare(self, clouds: list[Cloud]) -> None:
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    worker = threading.Thread(target=_prepare, args=(Probe(), []))
    worker.start()
    worker.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19
