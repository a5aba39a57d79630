"""Telling a caller that its job ended: a signed POST to ``notify_url``, with retries.

Notifications wait in the job store's outbox (``database/notifications.py``) from the
moment a job completes or dies, so a crash delays one but never loses it; every worker
delivers due ones beside its jobs, at least once (receivers dedupe by ``jobId``). The
body is the job's status JSON; ``X-Tsgate-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the body under ``TSGATE_SECRET``. URLs whose host resolves to a
loopback, link-local, private or otherwise non-global address are refused (checked for
every address the name resolves to) unless ``TSGATE_WEBHOOK_ALLOW_PRIVATE`` is set.
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
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import msgspec

from tsgate.errors import BadParameter
from tsgate.jobs.model import Job
from tsgate.jobs.store import Notifications

log = logging.getLogger("tsgate.jobs")

SIGNATURE_HEADER = "X-Tsgate-Signature"


def sign(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def check_url(url: str) -> None:
    """Refuse anything but an http(s) URL with a host; ``BadParameter`` names notify_url."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadParameter("notify_url", "must be an http:// or https:// URL with a host")


async def check_addresses(url: str, *, allow_private: bool) -> None:
    """Resolve the URL's host and refuse it when any address is not public."""
    check_url(url)
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BadParameter("notify_url", f"cannot resolve {host!r}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BadParameter(
                "notify_url",
                f"{host!r} resolves to non-public {address}"
                " (set TSGATE_WEBHOOK_ALLOW_PRIVATE=true to allow)",
            )


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
            # resolved again at send time: a name may have changed since submission
            await check_addresses(url, allow_private=self.allow_private)
        except BadParameter as exc:
            log.warning("job %s: webhook refused: %s", job.id, exc.detail)
            return Outcome.REFUSED
        body = msgspec.json.encode(job.to_json())
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.secret)}
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, transport=self.transport, follow_redirects=False
            ) as client:
                response = await client.post(url, content=body, headers=headers)
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
        return float(self.backoff_s * 2 ** (attempts - 1))


@dataclass
class WebhookOutbox:
    """Delivers the due notifications of the outbox, one claimed at a time."""

    notifications: Notifications
    sender: WebhookSender
    clock_ms: Callable[[], int]

    async def deliver_due(self, limit: int = 50) -> int:
        """Send up to ``limit`` due notifications; returns how many were delivered."""
        delivered = 0
        # held past the send's own timeout, so no other worker sends it meanwhile
        hold_ms = int(self.sender.timeout_s * 2000) + 1000
        for _ in range(limit):
            job = await self.notifications.claim(now_ms=self.clock_ms(), hold_ms=hold_ms)
            if job is None:
                break
            outcome = await self.sender.send(job)
            delay_s = self.sender.retry_in_s(job.notify_attempts)
            retry_at_ms = None
            if outcome is Outcome.RETRY and delay_s is not None:
                retry_at_ms = self.clock_ms() + int(delay_s * 1000)
            elif outcome is Outcome.RETRY:
                host = urlsplit(job.request.notify_url or "").hostname
                log.warning("job %s: webhook to %s gave up", job.id, host)
            await self.notifications.settle(
                job, sent=outcome is Outcome.SENT, retry_at_ms=retry_at_ms
            )
            delivered += outcome is Outcome.SENT
        return delivered
