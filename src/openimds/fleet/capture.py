"""`openimds capture`: ask a metadata service (Azure's, on a real VM) for this VM's
answers, part by part, for fleet/captured.py to turn into a VM file.

Each request carries `Metadata: true`, has a short timeout, follows no redirect (the
metadata service never sends one; a proxy in between might) and ignores proxy settings
in the environment (IMDS is never reached through a proxy). A part that fails is left
out with a note; only the instance document is needed. An access token is decoded where
it is received and dropped: only its ids leave this module, and no message holds it.
"""

from __future__ import annotations

import functools
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


class CaptureFailed(Exception):
    """The instance document could not be read: there is nothing to record."""


class PartFailed(Exception):
    """One part's request failed; the message says how (never with a token in it)."""


class Collector:
    def __init__(self, url: str, timeout: float, note: Note) -> None:
        self.url = url.rstrip("/")
        self.note = note
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
        try:
            response = self.client.get(self.url + path)
        except httpx.TimeoutException:
            raise PartFailed(f"no answer from {self.url} in time") from None
        except httpx.HTTPError as exc:
            raise PartFailed(f"cannot reach {self.url}: {exc}") from None
        if response.is_redirect:
            raise PartFailed(f"answered {response.status_code} (a redirect; not followed)")
        if response.status_code != 200:
            raise PartFailed(f"answered {response.status_code}{_reason(response)}")
        return response


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
