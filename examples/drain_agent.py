#!/usr/bin/env python3
"""A small drain agent for Azure scheduled events: poll, log, drain, approve.

It polls GET /metadata/scheduledevents once a second (as Azure recommends), logs every new
document, and for each Scheduled event that names this VM in `Resources` runs an optional
drain command and then approves the event (POST StartRequests), so maintenance starts
without waiting for NotBefore. Standard library only: it runs on any VM with Python 3.8+.

    python3 drain_agent.py                                   # on an Azure VM
    python3 drain_agent.py --base-url http://127.0.0.1:8080  # against openimds
    python3 drain_agent.py --drain-command 'systemctl stop myapp'

The drain command gets EVENT_ID, EVENT_TYPE and NOT_BEFORE in its environment; when it
fails, the event is not approved and the next poll tries again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("drain-agent")
API_VERSION = "2020-07-01"


class Imds:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        # IMDS must never be reached through a proxy.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.base + path, data=body, headers={"Metadata": "true"})
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with self.opener.open(request, timeout=self.timeout) as response:
            return bytes(response.read())

    def vm_name(self) -> str | None:
        path = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"
        try:
            return self._call(path).decode() or None
        except (urllib.error.URLError, OSError) as exc:
            log.warning("cannot read this VM's name (%s); approving every event", exc)
            return None

    def events(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(
            self._call(f"/metadata/scheduledevents?api-version={API_VERSION}")
        )
        return doc

    def approve(self, event_id: str) -> None:
        body = json.dumps({"StartRequests": [{"EventId": event_id}]}).encode()
        self._call(f"/metadata/scheduledevents?api-version={API_VERSION}", body)


def concerns_me(event: dict[str, Any], name: str | None) -> bool:
    resources = event.get("Resources", [])
    return name is None or name in resources or "_" + name in resources


def drain(command: str | None, event: dict[str, Any]) -> bool:
    if not command:
        return True
    env = dict(
        os.environ,
        EVENT_ID=event["EventId"],
        EVENT_TYPE=event["EventType"],
        NOT_BEFORE=event.get("NotBefore", ""),
    )
    result = subprocess.run(command, shell=True, env=env, check=False)
    if result.returncode != 0:
        log.error("drain command failed (exit %d); not approving yet", result.returncode)
    return result.returncode == 0


class Agent:
    def __init__(self, imds: Imds, drain_command: str | None) -> None:
        self.imds = imds
        self.drain_command = drain_command
        self.name = imds.vm_name()
        self.incarnation: int | None = None
        self.seen: dict[str, dict[str, Any]] = {}
        self.approved: set[str] = set()

    def poll(self) -> None:
        doc = self.imds.events()
        events = {e["EventId"]: e for e in doc.get("Events", [])}
        if doc.get("DocumentIncarnation") != self.incarnation:
            self.incarnation = doc.get("DocumentIncarnation")
            log.info("incarnation %s: %d event(s)", self.incarnation, len(events))
            for e in events.values():
                log.info(
                    "event %s %s %s NotBefore=%r Resources=%s",
                    e["EventId"],
                    e["EventType"],
                    e["EventStatus"],
                    e.get("NotBefore", ""),
                    ",".join(e.get("Resources", [])),
                )
        for event_id in self.seen.keys() - events.keys():
            log.info("event %s finished", event_id)
            self.approved.discard(event_id)
        self.seen = events
        for e in events.values():
            pending = e["EventStatus"] == "Scheduled" and e["EventId"] not in self.approved
            if pending and concerns_me(e, self.name) and drain(self.drain_command, e):
                self.imds.approve(e["EventId"])
                self.approved.add(e["EventId"])
                log.info("approved %s", e["EventId"])

    def run(self, interval: float) -> None:
        log.info("watching scheduled events of %s", self.name or "this VM")
        while True:
            try:
                self.poll()
            except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
                log.warning("poll failed: %s", exc)
            time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-url",
        default=os.environ.get("IMDS_BASE_URL", "http://169.254.169.254"),
        help="IMDS base URL (default $IMDS_BASE_URL or http://169.254.169.254)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--drain-command", help="shell command to run before approving")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        Agent(Imds(args.base_url), args.drain_command).run(args.interval)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
