"""Telling a caller that its job ended: a signed POST to ``notify_url``, with retries.

Notifications wait in the job store's outbox (``database/notifications.py``) from the
moment a job completes or dies, so a crash delays one but never loses it; every worker
delivers due ones beside its jobs, at least once (receivers dedupe by ``jobId``). The
body is the job's status JSON; ``X-Tsgate-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the body under ``TSGATE_SECRET``. URLs whose host resolves to a
loopback, link-local, private or otherwise non-global address are refused (checked for
every address the name resolves to, and for the IPv4 address an IPv6 one embeds:
mapped, compatible, NAT64, 6to4, Teredo) unless ``TSGATE_WEBHOOK_ALLOW_PRIVATE`` is set.
The name is resolved once per attempt and the connection made to the checked address
(Host header and TLS server name kept), so a DNS answer that changes between check and
connect cannot redirect a webhook. Many are sent at once, a few per host.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec

from tsgate import backoff
from tsgate.background import stop_all
from tsgate.errors import BadParameter
from tsgate.jobs.model import Job
from tsgate.jobs.store import Notifications

log = logging.getLogger("tsgate.jobs")

SIGNATURE_HEADER = "X-Tsgate-Signature"
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63
_HOST_WAIT_MS = 1000  # a notification whose host is at its bound is tried again after
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_url(url: str) -> None:
    """Refuse anything but an http(s) URL with a sane host and port; ``BadParameter``
    names notify_url."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port outside 0-65535, a broken IPv6 literal
        raise BadParameter("notify_url", f"not a URL: {exc}") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadParameter("notify_url", "must be an http:// or https:// URL with a host")
    host = parts.hostname
    if port == 0:
        raise BadParameter("notify_url", "port 0 is not a port")
    if any(c.isspace() or not c.isprintable() or c in "\\/@" for c in host):
        raise BadParameter("notify_url", "the host holds characters no host name has")
    if len(host) > MAX_HOST_CHARS or any(
        not label or len(label) > MAX_LABEL_CHARS for label in host.rstrip(".").split(".")
    ):
        raise BadParameter(
            "notify_url",
            f"the host is not a DNS name (at most {MAX_HOST_CHARS} characters, "
            f"labels of 1-{MAX_LABEL_CHARS})",
        )


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: mapped, compatible, NAT64, 6to4, Teredo."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (IPv4-compatible, deprecated)
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _NAT64_WELL_KNOWN or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, and so is any IPv4 address an IPv6 one embeds."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        return inner is None or (inner.is_global and not inner.is_multicast)
    return True


async def check_addresses(url: str, *, allow_private: bool) -> str:
    """Resolve the URL's host; refuse it when any address is not public. Returns the
    address to connect to (the caller connects there, never resolving again)."""
    check_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BadParameter("notify_url", f"cannot resolve {host[:80]!r}") from exc
    if not infos:
        raise BadParameter("notify_url", f"cannot resolve {host[:80]!r}")
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise BadParameter(
                    "notify_url",
                    f"{host[:80]!r} resolves to non-public {address}"
                    " (set TSGATE_WEBHOOK_ALLOW_PRIVATE=true to allow)",
                )
    return str(addresses[0])


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` aimed at the checked ``address``: the URL, the Host header and the TLS
    server name (SNI and certificate check stay on the name)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"Host": host_header}, extensions


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # 5xx, 429 or no answer: worth another attempt
    REFUSED = "refused"  # the address is not allowed: never sent


@dataclass
class WebhookSender:
    secret: bytes
    allow_private: bool = False
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None

    async def send(self, job: Job) -> Outcome:
        """One attempt to tell ``notify_url`` about ``job``."""
        url = job.request.notify_url
        if not url:
            return Outcome.REFUSED
        try:
            # resolved again at send time (a name may have changed since submission),
            # and the connection goes to exactly the address checked here
            address = await check_addresses(url, allow_private=self.allow_private)
        except BadParameter as exc:
            log.warning("job %s: webhook refused: %s", job.id, exc.detail)
            return Outcome.REFUSED
        body = msgspec.json.encode(job.to_json())
        target, host, extensions = pinned(url, address)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret),
            **host,
        }
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, transport=self.transport, follow_redirects=False
            ) as client:
                request = client.build_request(
                    "POST", target, content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request)
        except httpx.HTTPError as exc:
            log.info("job %s: webhook attempt %d: %s", job.id, job.notify_attempts, exc)
            return Outcome.RETRY
        if response.status_code >= 500 or response.status_code == 429:
            return Outcome.RETRY
        return Outcome.SENT

    def retry_in_s(self, attempts: int) -> float | None:
        """How long after attempt number ``attempts`` to try again; ``None``: give up."""
        if attempts > self.retries:
            return None
        return backoff.ceiling_s(attempts - 1, base_s=self.backoff_s)


@dataclass
class WebhookOutbox:
    """Delivers due notifications, many at once: at most ``concurrency`` in flight and
    ``per_host`` to one host, so a receiver that never answers delays only its own."""

    notifications: Notifications
    sender: WebhookSender
    clock_ms: Callable[[], int]
    concurrency: int = 16
    per_host: int = 2
    _sending: dict[asyncio.Task[bool], str] = field(default_factory=dict, init=False)

    def _busy(self, host: str) -> int:
        return sum(1 for h in self._sending.values() if h == host)

    async def start_due(self, limit: int = 50) -> int:
        """Claim due notifications while there is room and start sending them; returns
        how many were started. A claimed one whose host is at its bound waits a second."""
        return len(await self._start_due(limit))

    async def _start_due(self, limit: int) -> list[asyncio.Task[bool]]:
        # held past the send's own timeout, so no other worker sends it meanwhile
        hold_ms = int(self.sender.timeout_s * 2000) + 1000
        started: list[asyncio.Task[bool]] = []
        for _ in range(limit):
            if len(self._sending) >= max(1, self.concurrency):
                break
            job = await self.notifications.claim(now_ms=self.clock_ms(), hold_ms=hold_ms)
            if job is None:
                break
            host = (urlsplit(job.request.notify_url or "").hostname or "").lower()
            if self._busy(host) >= max(1, self.per_host):
                await self.notifications.postpone(job, until_ms=self.clock_ms() + _HOST_WAIT_MS)
                continue
            task = asyncio.create_task(self._deliver(job), name=f"tsgate-webhook-{job.id}")
            self._sending[task] = host
            task.add_done_callback(self._sending.pop)
            started.append(task)
        return started

    async def deliver_due(self, limit: int = 50) -> int:
        """Send up to ``limit`` due notifications and wait for them; returns how many
        were delivered."""
        results = await asyncio.gather(*await self._start_due(limit))
        return sum(results)

    async def aclose(self) -> None:
        """Stop sends in flight (each is due again once its claim lapses)."""
        await stop_all(list(self._sending))

    async def _deliver(self, job: Job) -> bool:
        outcome = await self.sender.send(job)
        delay_s = self.sender.retry_in_s(job.notify_attempts)
        retry_at_ms = None
        if outcome is Outcome.RETRY and delay_s is not None:
            retry_at_ms = self.clock_ms() + int(delay_s * 1000)
        elif outcome is Outcome.RETRY:
            host = urlsplit(job.request.notify_url or "").hostname
            log.warning("job %s: webhook to %s gave up", job.id, host)
        await self.notifications.settle(job, sent=outcome is Outcome.SENT, retry_at_ms=retry_at_ms)
        return outcome is Outcome.SENT
