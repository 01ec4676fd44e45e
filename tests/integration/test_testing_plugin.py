"""The pytest plugin, tested as its users run it (pytester, in a child pytest): the `imds`
fixture with azure-identity retrying through a fault, a drain handler driven through a
scheduled event on the virtual clock, the subprocess option, and the context managers."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points

import httpx
import pytest

import openimds.testing

pytest_plugins = ["pytester"]

NAME = "/metadata/instance/compute/name?api-version=2021-02-01&format=text"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    installed = any(ep.name == "openimds" for ep in entry_points(group="pytest11"))
    plugin = () if installed else ("-p", "openimds.testing.plugin")
    return pytester.runpytest_subprocess(*plugin, "-p", "no:cacheprovider", *args, timeout=120)


def test_azure_identity_through_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        from azure.identity import ManagedIdentityCredential

        def test_token(imds):
            assert os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] == imds.url
            imds.fault(path="/metadata/identity/oauth2/token", sequence=[410, 200])
            token = ManagedIdentityCredential().get_token("https://vault.azure.net/.default")
            assert token.token.count(".") == 2
            asked = [r for r in imds.requests if r["path"] == "/metadata/identity/oauth2/token"]
            assert [r["status"] for r in asked] == [410, 200]
            assert asked[0]["fault"] == imds.faults()[0]["id"]
            assert all(r["headers"]["Metadata"] == "true" for r in asked)
            assert {r["query"]["api-version"] for r in asked} == {"2018-02-01"}
            assert asked[0]["query"]["resource"] == "https://vault.azure.net"

        def test_environment_is_restored_after_the_test():
            assert "AZURE_POD_IDENTITY_AUTHORITY_HOST" not in os.environ
        """
    )
    result = run(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_drain_handler_through_an_event_on_the_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        class DrainHandler:
            '''Drains and approves Reboot events for this VM; back in service when
            no event is left.'''

            def __init__(self, url):
                self.url = url + "/metadata/scheduledevents?api-version=2020-07-01"
                self.draining = False
                self.approved = []

            def poll(self):
                doc = httpx.get(self.url, headers={"Metadata": "true"}).json()
                for event in doc["Events"]:
                    if event["EventStatus"] == "Scheduled" and event["EventType"] == "Reboot":
                        self.draining = True
                        body = {"StartRequests": [{"EventId": event["EventId"]}]}
                        httpx.post(self.url, json=body, headers={"Metadata": "true"})
                        self.approved.append(event["EventId"])
                if not doc["Events"]:
                    self.draining = False

        @pytest.mark.imds(vm={"name": "node-7", "instance": {"compute": {"name": "node-7"}}})
        def test_drain(imds):
            handler = DrainHandler(imds.url)
            handler.poll()
            assert not handler.draining
            event_id = imds.schedule_event("Reboot", not_before="+15m", duration=60)
            imds.advance(60)  # a minute later the handler polls again
            handler.poll()
            assert handler.draining and handler.approved == [event_id]
            assert imds.events()[0]["state"] == "Started"
            imds.advance(3600)  # long past the reboot and the completion delay
            handler.poll()
            assert not handler.draining
            assert imds.events() == []
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)


def test_the_subprocess_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        def test_sub(imds):
            imds.set_vm(name="sub-vm", location="eastus")
            got = httpx.get(imds.url + "/metadata/instance/compute?api-version=2021-02-01",
                            headers={"Metadata": "true"}).json()
            assert (got["name"], got["location"]) == ("sub-vm", "eastus")
            imds.advance(10)
        """
    )
    result = run(pytester, "--imds-subprocess")
    result.assert_outcomes(passed=1)


def test_serve_as_context_managers() -> None:
    with openimds.testing.serve(vm={"name": "ctx-vm"}) as imds:
        answer = httpx.get(imds.url + NAME, headers={"Metadata": "true"})
        assert answer.text == "ctx-vm"
        url = imds.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + NAME, headers={"Metadata": "true"})

    async def use() -> tuple[int, int]:
        async with openimds.testing.serve() as served:
            served.fault(path="/metadata/instance", status=429, times=1)
            async with httpx.AsyncClient() as client:
                first = await client.get(served.url + NAME, headers={"Metadata": "true"})
                second = await client.get(served.url + NAME, headers={"Metadata": "true"})
            return first.status_code, second.status_code

    assert asyncio.run(use()) == (429, 200)


def test_bad_keyword_and_refused_calls_say_why() -> None:
    with openimds.testing.serve() as imds:
        with pytest.raises(TypeError, match="unknown keyword 'colour'"):
            imds.set_vm(colour="red")
        with pytest.raises(openimds.testing.ServerRefused, match="status: 200 is not"):
            imds.fault(status=200)
