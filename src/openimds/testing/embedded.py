"""A server for the length of a block: in this process on its own thread and event loop
(the default), or as a subprocess (`subprocess=True`); and `Imds`, the handle a test
drives it through (the admin API, so both ways behave alike).

The server listens on ephemeral loopback ports, keeps its state in memory, throttles
nothing and writes no access log; its admin token is random and never leaves the handle.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

READY = re.compile(r"openimds: metadata on (http://\S+); admin on (\S+);")
START_TIMEOUT = 20.0
TOKEN_PATH = "/metadata/identity/oauth2/token"

# Keyword helpers of set_vm/update_vm and the compute fields they set.
COMPUTE_KEYWORDS = {
    "location": "location",
    "vm_size": "vmSize",
    "zone": "zone",
    "vm_id": "vmId",
    "computer_name": "osProfile.computerName",
    "admin_username": "osProfile.adminUsername",
    "user_data": "userData",
    "custom_data": "customData",
    "tags": "tags",
    "scale_set": "vmScaleSetName",
    "priority": "priority",
    "eviction_policy": "evictionPolicy",
}


class ServerRefused(RuntimeError):
    """A call the server refused, with its reason."""


class Imds:
    """A running server: its URL, and what a test does to it."""

    def __init__(self, url: str, admin_url: str, token: str) -> None:
        self.url = url
        self.admin_url = admin_url
        self._client = httpx.Client(
            base_url=admin_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    # -- environment ----------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What points azure-identity and msal at this server (as `openimds env`)."""
        return {
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.url,
            "MSAL_MANAGED_IDENTITY_ENDPOINT": self.url + TOKEN_PATH,
        }

    # -- the VM ---------------------------------------------------------------------------
    @property
    def vm_name(self) -> str:
        names = [vm["name"] for vm in self.call("GET", "/vms")["vms"]]
        if len(names) != 1:
            raise ServerRefused(f"the server has {len(names)} VMs; name one")
        return str(names[0])

    def vm(self, name: str | None = None) -> dict[str, Any]:
        """The VM as a VM file holds it."""
        found: dict[str, Any] = self.call("GET", f"/vms/{name or self.vm_name}")
        return found

    def set_vm(self, data: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Replace the (single) VM with `data`, in the VM file's format; keyword helpers
        (location=, vm_size=, tags=, user_data=, ... see COMPUTE_KEYWORDS) set compute
        fields on top."""
        vm = named(data or {})
        _apply_keywords(vm, fields)
        old = self.vm_name
        new = str(vm.get("name") or vm.get("instance", {}).get("compute", {}).get("name") or old)
        if new != old:
            self.call("DELETE", f"/vms/{old}")
        vm.setdefault("name", new)
        self.call("PUT", f"/vms/{new}", vm)

    def update_vm(self, **fields: Any) -> None:
        """Change some compute fields of the VM, keeping the rest."""
        vm = self.vm()
        vm.pop("revision", None)
        _apply_keywords(vm, fields)
        self.call("PUT", f"/vms/{vm['name']}", vm)

    # -- scheduled events and the clock ---------------------------------------------------
    def schedule_event(
        self, event_type: str, not_before: str | float | None = None, **options: Any
    ) -> str:
        """Schedule an event (Freeze, Reboot, Redeploy, Preempt, Terminate) for the VM, or
        for `vm=`; other options as the admin API's (duration=, description=,
        complete_after=, ...). Returns the EventId."""
        body: dict[str, Any] = {"type": event_type}
        if not_before is not None:
            body["notBefore"] = not_before
        vm = options.pop("vm", None)
        body["target"] = {"vm": vm or self.vm_name}
        names = {"duration": "durationInSeconds", "source": "eventSource"}
        for key, value in options.items():
            body[names.get(key, _camel(key))] = value
        events = self.call("POST", "/events", body)["events"]
        return str(events[0]["eventId"])

    def drill(self, name: str, *, dev: bool = True, vm: str | None = None) -> list[str]:
        """Run a built-in maintenance drill (docs/scheduled-events.md, "Drills") for the VM;
        the EventIds."""
        body = {"drill": name, "dev": dev, "vm": vm or self.vm_name}
        return [str(e["eventId"]) for e in self.call("POST", "/events/drill", body)["events"]]

    def events(self) -> list[dict[str, Any]]:
        """Live events as operators see them (state, NotBefore, approvals)."""
        events: list[dict[str, Any]] = self.call("GET", "/events")["events"]
        return events

    def advance(self, seconds: float) -> float:
        """Move the server's clock forward; the new time (epoch seconds)."""
        return float(self.call("POST", "/clock/advance", {"seconds": seconds})["now"])

    def now(self) -> float:
        return float(self.call("GET", "/clock")["now"])

    # -- faults -----------------------------------------------------------------------------
    def fault(self, path: str = "*", **rule: Any) -> str:
        """Add a fault rule (docs/faults.md): status=, sequence=, latency=, close=True,
        hang=True; vm=, times=, after=, window=, retry_after=. Returns its id."""
        return str(self.call("POST", "/faults", {"path": path, **rule})["rule"]["id"])

    def boot_window(self, seconds: float) -> None:
        self.call("POST", "/faults/boot", {"seconds": seconds})

    def faults(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self.call("GET", "/faults")["rules"]
        return rules

    def clear_faults(self) -> None:
        self.call("DELETE", "/faults")

    # -- the journal ------------------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request the server received, oldest first: method, path, query (a dict),
        headers (secrets redacted), vm, status, and `fault` when a rule answered."""
        entries: list[dict[str, Any]] = self.call("GET", "/requests")["requests"]
        return entries

    def clear_requests(self) -> None:
        self.call("DELETE", "/requests")

    # -- plumbing -------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._client.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                reason = response.json().get("error", response.text)
            except ValueError:
                reason = response.text
            raise ServerRefused(f"{method} {path}: {reason} ({response.status_code})")
        return response.json() if response.content else None

    def close(self) -> None:
        self._client.close()


def named(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a VM whose `name` is also its compute name unless that is given."""
    vm: dict[str, Any] = json.loads(json.dumps(dict(data)))
    if vm.get("name"):
        compute = vm.setdefault("instance", {}).setdefault("compute", {})
        compute.setdefault("name", vm["name"])
    return vm


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _apply_keywords(vm: dict[str, Any], fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if key == "name":
            vm["name"] = value
            vm.setdefault("instance", {}).setdefault("compute", {})["name"] = value
            continue
        if key not in COMPUTE_KEYWORDS:
            known = ", ".join(sorted(["name", *COMPUTE_KEYWORDS]))
            raise TypeError(f"set_vm: unknown keyword {key!r} (known: {known})")
        target = vm.setdefault("instance", {}).setdefault("compute", {})
        *parents, leaf = COMPUTE_KEYWORDS[key].split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value


class Serving:
    """`with Serving(...) as imds` / `async with ...`. Options:

    - `vm`: the VM, in the VM file's format (default: the built-in demo VM);
    - `config`: more settings, as the configuration file's sections (dict);
    - `subprocess`: run `openimds serve` in a child process instead of a thread.
    """

    def __init__(
        self,
        vm: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        subprocess: bool = False,
        args: Sequence[str] = (),
    ) -> None:
        self.vm = vm
        self.config = dict(config or {})
        self.use_subprocess = subprocess
        self.args = tuple(args)
        self.token = secrets.token_urlsafe(24)
        self.imds: Imds | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._thread: _Thread | None = None
        self._process: _Process | None = None

    def start(self) -> Imds:
        self._tmp = tempfile.TemporaryDirectory(prefix="openimds-")
        config_path = Path(self._tmp.name) / "config.json"
        document = dict(self.config)
        if self.vm is not None:
            document["vms"] = [named(self.vm)]
        config_path.write_text(json.dumps(document))
        try:
            if self.use_subprocess:
                self._process = _Process(config_path, self.token, self.args)
                url, admin = self._process.start()
            else:
                self._thread = _Thread(config_path, self.token)
                url, admin = self._thread.start()
        except BaseException:
            self._tmp.cleanup()
            raise
        self.imds = Imds(url, admin, self.token)
        return self.imds

    def stop(self) -> None:
        if self.imds is not None:
            self.imds.close()
        if self._thread is not None:
            self._thread.stop()
        if self._process is not None:
            self._process.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Imds:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Imds:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def _flags(token: str) -> dict[str, Any]:
    return {
        "server.listen": "127.0.0.1:0",
        "admin.listen": "127.0.0.1:0",
        "admin.token": token,
        "state.path": "memory:",
        "server.rate_limit": 0,
        "server.access_log": False,
        "identity.rate_limit": 0,
    }


class _Thread:
    """The server in this process, on its own thread and event loop."""

    def __init__(self, config_path: Path, token: str) -> None:
        self.config_path = config_path
        self.token = token
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="openimds", daemon=True)
        self.bound: dict[str, str] = {}

    def start(self) -> tuple[str, str]:
        self.thread.start()
        if not self.ready.wait(START_TIMEOUT) or self.failure is not None:
            self.stop()
            raise RuntimeError(f"openimds did not start: {self.failure!r}")
        return self.bound["metadata"], self.bound["admin"]

    def _run(self) -> None:
        from openimds.config import load_config
        from openimds.features import ALL
        from openimds.runtime import build_runtime
        from openimds.server import serve

        try:
            config = load_config(str(self.config_path), flags=_flags(self.token))
            runtime = build_runtime(config, ALL)
        except BaseException as exc:
            self.failure = exc
            self.ready.set()
            return

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()

            def on_ready() -> None:
                self.bound = dict(runtime.bound)
                self.ready.set()

            await serve(runtime, stop=self.stop_event, on_ready=on_ready)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.failure = exc
        finally:
            runtime.close()
            self.ready.set()

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=10)


class _Process:
    """`openimds serve` in a child process, with this interpreter."""

    def __init__(self, config_path: Path, token: str, args: Sequence[str]) -> None:
        self.config_path = config_path
        self.token = token
        self.args = args
        self.log = config_path.with_name("server.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> tuple[str, str]:
        cmd = [sys.executable, "-m", "openimds", "serve", "--config", str(self.config_path)]
        cmd += ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--state", "memory:"]
        cmd += ["--rate-limit", "0", "--no-access-log", *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMDS_")}
        env.update(OPENIMDS_ADMIN_TOKEN=self.token, OPENIMDS_IDENTITY_RATE_LIMIT="0")
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = READY.search(self.log.read_text(errors="replace"))
            if match:
                return match.group(1), match.group(2)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        output = self.log.read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"openimds did not start:\n{output}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
