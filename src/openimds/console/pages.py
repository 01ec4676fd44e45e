"""The console's pages and actions. Each reads or changes the fleet through the documented
admin API only (console/api.py); an action answers with a redirect back to its page (post,
redirect, get), so it works the same with or without JavaScript."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256
from starlette.responses import RedirectResponse, Response

from openimds.console.api import ApiError
from openimds.console.auth import PREFIX, Visit
from openimds.console.render import Pages

PAGE_SIZE: Final[int] = 50
FEW: Final[int] = 20  # VMs looked up one by one; more, and the fleet is listed once
EVENT_TYPES: Final[tuple[str, ...]] = ("Reboot", "Redeploy", "Freeze", "Preempt", "Terminate")
FORMATS: Final[tuple[str, ...]] = ("json", "text")
# The resource whose token claims the VM page shows, and the attested api-version it asks.
ARM: Final[str] = "https://management.azure.com/"
ATTESTED_VERSION: Final[str] = "2020-09-01"


def back(visit: Visit, default: str) -> Response:
    """Return to the page the form came from (a console page), else to `default`."""
    target = visit.form.get("back", "")
    if not target.startswith(f"{PREFIX}/") or "//" in target:
        target = default
    return RedirectResponse(target, status_code=303)


async def attempt(visit: Visit, done: str, method: str, path: str, body: object = None) -> None:
    """Call the admin API for a change and leave the outcome for the next page."""
    try:
        await visit.api.send(method, path, body)
    except ApiError as exc:
        visit.flash(str(exc), error=True)
    else:
        visit.flash(done)


def _flash(visit: Visit) -> tuple[str, bool] | None:
    message, visit.session.flash = visit.session.flash, None
    return message


class ConsolePages:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def page(self, visit: Visit, template: str, **context: Any) -> Response:
        return self.pages.page(
            visit.request,
            template,
            csrf=visit.session.csrf,
            flash=_flash(visit),
            **context,
        )

    def fragment(self, visit: Visit, template: str, **context: Any) -> Response:
        return self.pages.page(visit.request, template, csrf=visit.session.csrf, **context)

    # Fleet -------------------------------------------------------------------------------------

    async def fleet(self, visit: Visit) -> Response:
        context = await self._fleet_rows(visit)
        return self.page(visit, "fleet.html", **context)

    async def fleet_rows(self, visit: Visit) -> Response:
        return self.fragment(visit, "_fleet_rows.html", **await self._fleet_rows(visit))

    async def _fleet_rows(self, visit: Visit) -> dict[str, Any]:
        query = visit.request.query_params
        filters = {k: query.get(k, "").strip() for k in ("q", "tag", "scale_set", "address")}
        raw_page = query.get("page", "")
        page = max(1, int(raw_page)) if raw_page.isascii() and raw_page.isdigit() else 1
        params: dict[str, str | int | None] = {k: v or None for k, v in filters.items()}
        params.update(view="summary", offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        answer = await visit.api.get("/vms", params)
        total = int(answer["total"])
        return {
            "filters": filters,
            "vms": answer["vms"],
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
        }

    # One VM ----------------------------------------------------------------------------

    async def vm(self, visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        try:
            spec = await visit.api.get(f"/vms/{name}")
        except ApiError as exc:
            return self.page(visit, "refused.html", message=str(exc))
        versions = await visit.api.get(f"/vms/{name}/metadata/versions")
        instance = await self._instance(visit, name, versions["newest"], "json")
        context = {
            "name": name,
            "spec": spec,
            "versions": versions["versions"],
            "instance": instance,
            "loadbalancer": await self._preview(visit, name, "/metadata/loadbalancer", "json"),
            "user_data": await self._user_data(visit, name, versions["newest"]),
            "identities": await _or_error(
                visit.api.get(f"/vms/{name}/identities/claims", {"resource": ARM})
            ),
            "attested": await _or_error(
                visit.api.get(f"/vms/{name}/attested", {"api-version": ATTESTED_VERSION})
            ),
            "requests": await _or_error(visit.api.get("/requests", {"vm": name, "limit": 50})),
        }
        return self.page(visit, "vm.html", **context)

    async def vm_instance(self, visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        query = visit.request.query_params
        versions = await visit.api.get(f"/vms/{name}/metadata/versions")
        version = query.get("api-version") or versions["newest"]
        fmt = query.get("format") or "json"
        fmt = fmt if fmt in FORMATS else "json"
        instance = await self._instance(visit, name, version, fmt)
        return self.fragment(
            visit, "_vm_instance.html", name=name, versions=versions["versions"], instance=instance
        )

    async def _instance(self, visit: Visit, name: str, version: str, fmt: str) -> dict[str, Any]:
        shown = await self._preview(visit, name, "/metadata/instance", fmt, version)
        return {**shown, "version": version, "format": fmt}

    async def _preview(
        self, visit: Visit, name: str, path: str, fmt: str, version: str | None = None
    ) -> dict[str, Any]:
        params = {"path": path, "api-version": version, "format": fmt}
        try:
            answer: dict[str, Any] = await visit.api.get(f"/vms/{name}/metadata", params)
        except ApiError as exc:
            return {"status": exc.answer.status, "body": str(exc), "absent": []}
        return answer

    async def _user_data(self, visit: Visit, name: str, version: str) -> dict[str, Any]:
        shown = await self._preview(
            visit, name, "/metadata/instance/compute/userData", "text", version
        )
        decoded = None
        if shown["status"] == 200 and shown["body"]:
            try:
                decoded = base64.b64decode(shown["body"], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = None
        return {**shown, "decoded": decoded}

    # Live requests ---------------------------------------------------------------------

    async def live(self, visit: Visit) -> Response:
        query = visit.request.query_params
        filters = {k: query.get(k, "").strip() for k in ("vm", "path", "status")}
        params = {k: v or None for k, v in filters.items()}
        recent = await _or_error(visit.api.get("/requests", {**params, "limit": 50}))
        return self.page(visit, "live.html", filters=filters, recent=recent)

    # Scheduled events ------------------------------------------------------------------

    async def events(self, visit: Visit) -> Response:
        vm = visit.request.query_params.get("vm", "").strip()
        context = await self.timeline(visit, vm or None)
        drills = await visit.api.get("/events/drills")
        return self.page(
            visit, "events.html", vm=vm, types=EVENT_TYPES, drills=drills["drills"], **context
        )

    async def timeline(
        self, visit: Visit, vm: str | None, known: dict[str, str | None] | None = None
    ) -> dict[str, Any]:
        """The events (of `vm`, or all) grouped for the timeline. `known` keeps the scale
        sets already looked up, so an open page asks the inventory only about VMs new to
        its events, not about the whole fleet once a second."""
        listed = await visit.api.get("/events")
        events = [e for e in listed["events"] if vm is None or vm in e["vms"]]
        names = {v for e in events for v in e["vms"]}
        known = {} if known is None else known
        missing = names - known.keys()
        if missing:
            found = await self._scale_sets(visit, missing)
            known.update({name: found.get(name) for name in missing})
        return {"groups": group_events(events, known), "events": events}

    async def _scale_sets(self, visit: Visit, names: set[str]) -> dict[str, str | None]:
        """The scale set of each named VM: a search per VM for a few, one listing for many."""
        rows: list[dict[str, Any]] = []
        if len(names) <= FEW:
            for name in names:
                answer = await visit.api.get("/vms", {"view": "summary", "q": name})
                rows.extend(answer["vms"])
        else:
            rows = (await visit.api.get("/vms", {"view": "summary"}))["vms"]
        return {row["name"]: row["scaleSet"] for row in rows if row["name"] in names}

    async def schedule(self, visit: Visit) -> Response:
        form = visit.form
        target = form.get("target", "").strip()
        body: dict[str, Any] = {"type": form.get("type", "Reboot")}
        if target:
            body["target"] = target if ":" in target or target == "all" else f"vm:{target}"
        for field, key in (("at", "at"), ("notBefore", "not_before")):
            if form.get(key, "").strip():
                body[field] = form[key].strip()
        if form.get("duration", "").strip():
            body["durationInSeconds"] = _number(form["duration"])
        if form.get("description", "").strip():
            body["description"] = form["description"].strip()
        await attempt(visit, f"{body['type']} scheduled.", "POST", "/events", body)
        return back(visit, f"{PREFIX}/events")

    async def drill(self, visit: Visit) -> Response:
        form = visit.form
        body = {"drill": form.get("drill", ""), "dev": form.get("dev") == "on"}
        if form.get("vm", "").strip():
            body["vm"] = form["vm"].strip()
        await attempt(visit, f"Drill {body['drill']} started.", "POST", "/events/drill", body)
        return back(visit, f"{PREFIX}/events")

    async def event_action(self, visit: Visit) -> Response:
        event_id = visit.request.path_params["event_id"]
        action = visit.request.path_params["action"]
        path = f"/events/{event_id}/{action}"
        if action == "approve":
            vm = visit.form.get("vm", "")
            await attempt(visit, f"Approved {event_id} for {vm}.", "POST", path, {"vm": vm})
        elif action in ("start", "cancel"):
            await attempt(visit, f"{event_id}: {action} sent.", "POST", path)
        else:
            visit.flash(f"unknown action {action!r}", error=True)
        return back(visit, f"{PREFIX}/events")

    # Keys and certificates -------------------------------------------------------------

    async def keys(self, visit: Visit) -> Response:
        keys = await visit.api.get("/identity/keys")
        ca = await visit.api.get("/attested/ca")
        return self.page(visit, "keys.html", keys=keys["keys"], chain=certificate_chain(ca))

    async def rotate(self, visit: Visit) -> Response:
        try:
            rotated = await visit.api.send("POST", "/identity/keys/rotate")
        except ApiError as exc:
            visit.flash(str(exc), error=True)
        else:
            visit.flash(f"New signing key {rotated['kid']} is active.")
        return back(visit, f"{PREFIX}/keys")

    async def ca_bundle(self, visit: Visit) -> Response:
        ca = await visit.api.get("/attested/ca")
        bundle = "".join(c["pem"] for c in certificate_chain(ca))
        return Response(
            bundle,
            media_type="application/x-pem-file",
            headers={"Content-Disposition": 'attachment; filename="openimds-ca.pem"'},
        )

    # Faults ----------------------------------------------------------------------------

    async def faults(self, visit: Visit) -> Response:
        rules = await visit.api.get("/faults")
        return self.page(visit, "faults.html", rules=rules["rules"])

    async def add_fault(self, visit: Visit) -> Response:
        form = visit.form
        body: dict[str, Any] = {"path": form.get("path", "").strip() or "*"}
        if form.get("vm", "").strip():
            body["vm"] = form["vm"].strip()
        kind = form.get("kind", "status")
        if kind == "status":
            body["status"] = _number(form.get("status") or "500")
        elif kind == "latency":
            body["latency"] = _number(form.get("latency") or "1")
        elif kind in ("close", "hang"):
            body[kind] = True
        if form.get("times", "").strip():
            body["times"] = _number(form["times"])
        if form.get("retry_after", "").strip():
            body["retry_after"] = _number(form["retry_after"])
        await attempt(visit, "Fault rule added.", "POST", "/faults", body)
        return back(visit, f"{PREFIX}/faults")

    async def remove_fault(self, visit: Visit) -> Response:
        rule = visit.request.path_params["rule_id"]
        await attempt(visit, f"Rule {rule} removed.", "DELETE", f"/faults/{rule}")
        return back(visit, f"{PREFIX}/faults")

    async def clear_faults(self, visit: Visit) -> Response:
        await attempt(visit, "Every fault rule removed.", "DELETE", "/faults")
        return back(visit, f"{PREFIX}/faults")


def group_events(
    events: list[dict[str, Any]], scale_sets: Mapping[str, str | None]
) -> list[dict[str, Any]]:
    """The timeline the events page draws: one group per scale set (VMs outside any scale
    set last), each with its events in the order they were posted, once per group however
    many of its VMs an event covers, with the group's VMs and those still to approve."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for event in events:
        covered: dict[str | None, list[str]] = {}
        for vm in event["vms"]:
            covered.setdefault(scale_sets.get(vm), []).append(vm)
        for group, vms in covered.items():
            awaiting = [vm for vm in vms if vm in event.get("awaiting", ())]
            groups.setdefault(group, []).append(
                {**event, "groupVms": sorted(vms), "groupAwaiting": sorted(awaiting)}
            )
    ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [{"scaleSet": group, "events": listed} for group, listed in ordered]


def certificate_chain(ca: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Root first, then the intermediates: names, validity and the PEM of each."""
    pems = ([ca["root"]] if ca.get("root") else []) + list(ca.get("intermediates", []))
    chain = []
    for text in pems:
        cert = x509.load_pem_x509_certificate(text.encode())
        chain.append(
            {
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "notBefore": cert.not_valid_before_utc.timestamp(),
                "notAfter": cert.not_valid_after_utc.timestamp(),
                "fingerprint": cert.fingerprint(SHA256()).hex(":"),
                "pem": text,
            }
        )
    return chain


def _number(raw: str) -> int | float | str:
    """A form's number as JSON would carry it. What is not a number goes on as typed, so
    the admin API refuses it in its own words (never silently replaced by a default)."""
    text = raw.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


async def _or_error(pending: Any) -> dict[str, Any]:
    """The API's answer, or `{"error": message}` to show in its place on the page."""
    try:
        answer: dict[str, Any] = await pending
    except ApiError as exc:
        return {"error": str(exc)}
    return answer
