"""Telling a caller that its job ended: a signed POST to ``notify_url``, with retries.

The body is the job's status JSON; ``X-Tsgate-Signature: sha256=<hex>`` is the
HMAC-SHA256 of the body under ``TSGATE_SECRET``. URLs whose host resolves to a
loopback, link-local, private or otherwise non-global address are refused (checked for
every address the name resolves to) unless ``TSGATE_WEBHOOK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import msgspec

from tsgate.errors import BadParameter
from tsgate.jobs.model import Job

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


@dataclass
class WebhookSender:
    secret: bytes
    allow_private: bool = False
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None

    async def __call__(self, job: Job) -> None:
        url = job.request.notify_url
        if not url:
            return
        try:
            # resolved again at send time: a name may have changed since submission
            await check_addresses(url, allow_private=self.allow_private)
        except BadParameter as exc:
            log.warning("job %s: webhook refused: %s", job.id, exc.detail)
            return
        body = msgspec.json.encode(job.to_json())
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.secret)}
        async with httpx.AsyncClient(
            timeout=self.timeout_s, transport=self.transport, follow_redirects=False
        ) as client:
            for attempt in range(self.retries + 1):
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code < 500 and response.status_code != 429:
                        return
                except httpx.HTTPError as exc:
                    log.info("job %s: webhook attempt %d: %s", job.id, attempt + 1, exc)
                await asyncio.sleep(self.backoff_s * 2**attempt)
        log.warning("job %s: webhook to %s gave up", job.id, urlsplit(url).hostname)
