"""`openimds capture`: ask a metadata service (Azure's, on a real VM) for this VM's
answers, part by part, for fleet/captured.py to turn into a VM file.

Each request carries `Metadata: true`, has a short timeout, follows no redirect (the
metadata service never sends one; a proxy in between might) and ignores proxy settings
in the environment (IMDS is never reached through a proxy). The answers Azure calls
transient (410 while IMDS is updated, 429, 5xx) are retried with backoff, as the SDKs do:
at most 5 retries 0.5 s to 8 s apart (15.5 s of waiting), a 410 up to 7 (63.5 s, as Azure
says to retry it for 70 s), a 429's Retry-After honoured up to 30 s; each retry is noted.
A part that still fails is left out with a note; only the instance document is needed.
An access token is decoded where it is received and dropped: only its ids leave this
module, and no message holds it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from openimds.core.versions import LATEST
from openimds.fleet.captured import Capture, IdentityClaims, NotAToken, claims_of

DEFAULT_URL = "http://169.254.169.254"
INSTANCE = f"/metadata/instance?api-version={LATEST}"
USER_DATA = "/metadata/instance/compute/userData?api-version=2021-01-01&format=text"
LOADBALANCER = "/metadata/loadbalancer?api-version=2020-10-01"
IDENTITY_INFO = "/metadata/identity/info?api-version=2018-02-01"
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
# Any resource does; Azure Resource Manager's is the one every VM identity may ask for.
RESOURCE = "https://management.azure.com/"

Note = Callable[[str], None]
# Seconds before each retry of a transient answer; 410 gets the longer schedule.
WAITS = (0.5, 1.0, 2.0, 4.0, 8.0)
GONE_WAITS = (*WAITS, 16.0, 32.0)
MAX_RETRY_AFTER = 30.0


def transient(status: int) -> bool:
    """The answers Azure documents as worth retrying (IMDS: 410, 429, 500; any 5xx)."""
    return status in (410, 429) or 500 <= status <= 599


class CaptureFailed(Exception):
    """The instance document could not be read: there is nothing to record."""


class PartFailed(Exception):
    """One part's request failed; the message says how (never with a token in it)."""


class Collector:
    def __init__(
        self, url: str, timeout: float, note: Note, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.url = url.rstrip("/")
        self.note = note
        self.sleep = sleep
        self.what = "the instance document"  # the part being read, for retry notes
        self.client = httpx.Client(
            headers={"Metadata": "true"},
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        self.client.close()

    def capture(self, client_ids: Sequence[str]) -> Capture:
        try:
            instance = self._json(INSTANCE)
        except PartFailed as exc:
            raise CaptureFailed(f"the instance document: {exc}") from None
        if not isinstance(instance, dict):
            raise CaptureFailed("the instance document is not a JSON object")
        capture = Capture(instance)
        capture.user_data = self._part("userData", lambda: self._text(USER_DATA))
        lb = self._part("load balancer", lambda: self._json(LOADBALANCER))
        capture.loadbalancer = lb.get("loadbalancer") if isinstance(lb, dict) else None
        info = self._part("identity info", lambda: self._json(IDENTITY_INFO))
        tenant = info.get("tenantId") if isinstance(info, dict) else None
        capture.tenant_id = tenant if isinstance(tenant, str) else None
        for client_id in (None, *client_ids):
            what = "system-assigned identity" if client_id is None else f"identity {client_id}"
            ids = self._part(what, functools.partial(self._identity, client_id))
            if ids is not None:
                capture.identities.append(ids)
        return capture

    def _part(self, what: str, read: Callable[[], Any]) -> Any:
        self.what = what
        try:
            return read()
        except PartFailed as exc:
            self.note(f"{what}: {exc}; left out")
            return None

    def _identity(self, client_id: str | None) -> IdentityClaims:
        path = TOKEN + quote(RESOURCE, safe="")
        if client_id is not None:
            path += "&client_id=" + quote(client_id, safe="")
        body = self._json(path)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise PartFailed("the answer holds no access_token")
        try:
            return claims_of(token)
        except NotAToken as exc:
            raise PartFailed(str(exc)) from None

    def _json(self, path: str) -> Any:
        response = self._get(path)
        try:
            return response.json()
        except ValueError:
            raise PartFailed("the answer is not JSON") from None

    def _text(self, path: str) -> str:
        return self._get(path).text

    def _get(self, path: str) -> httpx.Response:
        tries = 0
        while True:
            response = self._once(path)
            waits = GONE_WAITS if response.status_code == 410 else WAITS
            if not transient(response.status_code) or tries >= len(waits):
                break
            wait = max(waits[tries], _retry_after(response))
            tries += 1
            self.note(
                f"{self.what}: answered {response.status_code}{_reason(response)}; "
                f"retry {tries} in {wait:g} s"
            )
            self.sleep(wait)
        if response.is_redirect:
            raise PartFailed(f"answered {response.status_code} (a redirect; not followed)")
        if response.status_code != 200:
            after = f" after {tries + 1} tries" if tries else ""
            raise PartFailed(f"answered {response.status_code}{_reason(response)}{after}")
        return response

    def _once(self, path: str) -> httpx.Response:
        try:
            return self.client.get(self.url + path)
        except httpx.TimeoutException:
            raise PartFailed(f"no answer from {self.url} in time") from None
        except httpx.HTTPError as exc:
            raise PartFailed(f"cannot reach {self.url}: {exc}") from None


def _retry_after(response: httpx.Response) -> float:
    """A 429's Retry-After in seconds (0 when absent or not a number), at most 30."""
    raw = response.headers.get("retry-after", "")
    if response.status_code != 429 or not (raw.isascii() and raw.isdigit()):
        return 0.0
    return min(float(raw), MAX_RETRY_AFTER)


def _reason(response: httpx.Response) -> str:
    """Azure's error sentence, if the body has one (`error_description` or `error`)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    text = body.get("error_description") or body.get("error")
    return f" ({text})" if isinstance(text, str) and text else ""


def collect(url: str, client_ids: Sequence[str], timeout: float, note: Note) -> Capture:
    collector = Collector(url, timeout, note)
    try:
        return collector.capture(client_ids)
    finally:
        collector.close()
