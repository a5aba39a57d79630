"""Hostile webhooks: addresses that hide loopback, DNS answers that change between check
and connect, bad ports and hosts, and receivers that never answer."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

import httpx
import pytest

from tests.service.test_jobs import Env
from tests.service.test_webhooks import env, finished_job  # noqa: F401 - the env fixture
from tsgate.database.notifications import SqlNotifications as Notifications
from tsgate.errors import BadParameter
from tsgate.jobs.webhooks import WebhookOutbox, WebhookSender, check_addresses, is_public

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "::",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses_in_every_spelling_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "64:ff9b::5db8:d822"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://example.com:99999/hook",
        "http://example.com:0/hook",
        "http://" + "a" * 70_000 + ".com/hook",
        "http://" + "a" * 64 + ".example.com/hook",
        "http://[not-an-ip/hook",
        "http://exa mple.com/hook",
    ],
)
async def test_hostile_notify_urls_are_a_400_naming_notify_url(url: str) -> None:
    with pytest.raises(BadParameter) as refused:
        await check_addresses(url, allow_private=False)
    assert refused.value.param == "notify_url"


def _resolver(answers: dict[str, list[str]], calls: list[str]) -> Any:
    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        calls.append(host)
        found = answers[host]
        address = found.pop(0) if len(found) > 1 else found[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


async def test_the_connection_goes_to_the_address_that_was_checked(
    env: Env,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the name answers a public address to the check, then loopback to anyone asking again
    calls: list[str] = []
    answers = {"hook.example": ["93.184.216.34", "127.0.0.1"]}
    monkeypatch.setattr(
        asyncio.get_running_loop(), "getaddrinfo", _resolver(answers, calls), raising=False
    )
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sender = WebhookSender(b"k", transport=httpx.MockTransport(receive))
    job = await finished_job(env, notify_url="https://hook.example:8443/in?x=1")
    outbox = WebhookOutbox(Notifications(env.services.database.sql), sender, env.clock)
    assert await outbox.deliver_due() == 1
    assert calls == ["hook.example"]  # resolved once
    (request,) = seen
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.path == "/in" and request.url.query == b"x=1"
    assert request.headers["host"] == "hook.example:8443"
    assert request.extensions["sni_hostname"] == "hook.example"  # TLS checks the name
    assert (await env.job(job.id)).notify_state == "sent"


async def test_tarpit_receivers_delay_only_their_own_webhooks(
    env: Env,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    answers = {"tarpit.example": ["93.184.216.34"], "fine.example": ["93.184.216.35"]}
    monkeypatch.setattr(
        asyncio.get_running_loop(), "getaddrinfo", _resolver(answers, calls), raising=False
    )
    arrived: dict[str, float] = {}
    started = time.monotonic()

    async def receive(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "tarpit.example":
            await asyncio.sleep(30)  # never answers within the timeout
        arrived[request.headers["host"]] = time.monotonic() - started
        return httpx.Response(204)

    sender = WebhookSender(b"k", timeout_s=10.0, transport=httpx.MockTransport(receive))
    for i in range(5):
        await finished_job(env, notify_url=f"http://tarpit.example/{i}", point=i)
    await finished_job(env, notify_url="http://fine.example/hook", point=5)
    outbox = WebhookOutbox(Notifications(env.services.database.sql), sender, env.clock, per_host=2)
    try:
        # the tarpit's five are due first; a worker's polls start what fits
        for _ in range(3):
            await outbox.start_due()
            env.clock.ms += 1_000
            await asyncio.sleep(0.05)
        for _ in range(40):
            if "fine.example" in arrived:
                break
            await asyncio.sleep(0.05)
        in_flight = {outbox._busy("tarpit.example"), outbox._busy("fine.example")}
    finally:
        await outbox.aclose()
    # long before any tarpit delivery times out: it did not wait behind them
    assert arrived["fine.example"] < 5.0, arrived
    assert max(in_flight) <= 2  # never more than per_host to the tarpit
