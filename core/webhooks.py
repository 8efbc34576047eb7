"""Push, not only poll: when an agent's ticket with a ``notify_url`` is answered, decided, expired
or timed out, Handoff POSTs the result ``get_result`` would return, signed as Standard Webhooks are
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 of id, timestamp and
body with the agent's secret), from an outbox: retried with backoff until the receiver says 2xx,
across restarts; one ``webhook-id`` per outcome for the receiver to deduplicate on.

The agent's secret is derived from its MCP token (``webhook_secret``), so an agent verifies with
what it already holds. Only ``https://`` URLs, or ``http://`` on this machine.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import DefaultResolver
from aiohttp.abc import AbstractResolver, ResolveResult
from standardwebhooks import Webhook

from core.clock import Clock
from core.workers import KeyedWorkers
from storage.db import Store
from storage.records import Ticket
from storage.tickets import TicketStore
from storage.webhooks import Delivery, WebhookStore

log = logging.getLogger(__name__)

SETTLED = ("answered", "approved", "edited", "denied", "expired", "timed_out", "closed")
MAX_URL = 2000
CATCH_UP_DAYS = 30  # outcomes of older tickets are not looked for again at start


def notify_url_problem(url: str) -> str | None:
    """Why this URL may not receive webhooks, or None."""
    parts = urlsplit(url.strip())
    if len(url) > MAX_URL or not parts.hostname:
        return "notify_url must be a full URL of at most 2000 characters"
    if parts.scheme == "https":
        if _internal_address(parts.hostname):
            return (
                "notify_url names a private or link-local address; use a public https:// address"
                " (or http:// on this machine)"
            )
        return None
    if parts.scheme == "http" and _loopback(parts.hostname):
        return None
    return "notify_url must be https:// (http:// only on this machine: 127.0.0.1, ::1, localhost)"


def _internal_address(host: str) -> bool:
    """An IP literal inside a private network, link-local (cloud metadata), multicast or
    unspecified: not where an agent's webhook should make this bot send requests. The shorthand
    forms the system resolver reads as addresses (``2852039166``, ``0xa9.0xfe.0xa9.0xfe``) count
    as literals; names are checked when they are resolved, at delivery (``PublicResolver``)."""
    address = _ip_literal(host)
    return address is not None and internal_ip(address)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # what inet_aton (and so getaddrinfo) reads as an IPv4 address
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def internal_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Private, link-local, multicast, unspecified or reserved (an IPv4 address mapped into IPv6
    is judged as itself); loopback is not: http:// on this machine is allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_loopback and (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    address = _ip_literal(host)
    return address is not None and address.is_loopback


def webhook_secret(token: str) -> str:
    """The agent's webhook secret (Standard Webhooks' ``whsec_`` form), derived from its MCP
    token: the agent computes it from the token it holds."""
    key = hmac.new(token.encode(), b"handoff webhook signing", hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(key).decode()


# Posts one webhook: (url, body, headers) -> the HTTP status (an exception: unreachable).
Post = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]


class Webhooks:
    def __init__(
        self,
        *,
        db: Store,
        clock: Clock,
        tokens: Mapping[str, str],
        result_of: Callable[[Ticket], dict[str, Any]],
        post: Post | None = None,
        first_retry: float = 2.0,
        max_delay: float = 600.0,
        attempts: int = 12,
    ) -> None:
        self.store = WebhookStore(db)
        self.tickets = TicketStore(db)
        self.clock = clock
        self.signers: dict[str, Webhook] = {}
        self.use_tokens(tokens)
        self.result_of = result_of
        self._http = _Poster()
        self.post = post or self._http.post
        self.first_retry, self.max_delay, self.attempts = first_retry, max_delay, attempts
        self._workers: KeyedWorkers[int] = KeyedWorkers(self._deliver, "webhooks")
        self._pending: set[asyncio.Task[None]] = set()

    def use_tokens(self, tokens: Mapping[str, str]) -> None:
        """The agents' MCP tokens, from which each one's signing secret is derived."""
        self.signers.update({name: Webhook(webhook_secret(t)) for name, t in tokens.items()})

    # -- queueing ------------------------------------------------------------------------------

    def ticket_changed(self, ticket_id: int) -> None:
        """After any committed change of a ticket (the desk's on_changed). Without agents (no MCP
        tokens) no ticket can have a webhook: nothing is read."""
        if not self.signers:
            return
        task = asyncio.get_running_loop().create_task(self._queue(ticket_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _queue(self, ticket_id: int) -> None:
        ticket = await self.tickets.get(ticket_id)
        if ticket is None or not ticket.notify_url or not ticket.agent_name:
            return
        result = self.result_of(ticket)
        if result["status"] not in SETTLED:
            return
        body = json.dumps(result, ensure_ascii=False, sort_keys=True)
        now = self.clock.now()
        if await self.store.enqueue(
            ticket.id, result["status"], ticket.agent_name, ticket.notify_url, body, now
        ):
            self._workers.wake(ticket.id)

    async def resume(self) -> int:
        """After a start: queue outcomes the last process settled but did not queue, then deliver
        what waits (at its time)."""
        since = self.clock.now() - CATCH_UP_DAYS * 86400
        for ticket_id in await self.store.settled_with_url(since):
            await self._queue(ticket_id)
        waiting = await self.store.waiting_tickets()
        for ticket_id, due in waiting:
            delay = due - self.clock.now()
            if delay > 0:
                self._workers.wake_later(ticket_id, min(delay, self.max_delay))
            else:
                self._workers.wake(ticket_id)
        return len(waiting)

    # -- delivering ----------------------------------------------------------------------------

    async def _deliver(self, ticket_id: int) -> None:
        """This ticket's waiting deliveries, in order; a failure waits (backoff) before the rest."""
        for delivery in await self.store.waiting(ticket_id):
            error = await self._send(delivery)
            now = self.clock.now()
            if error is None:
                await self.store.delivered(delivery.id, now)
                continue
            tries = delivery.attempts + 1
            if tries >= self.attempts:
                log.warning(
                    "webhook %s to %s given up after %d attempts: %s",
                    delivery.webhook_id,
                    delivery.url,
                    tries,
                    error,
                )
                await self.store.given_up(delivery.id, now, error)
                continue
            delay = min(self.max_delay, self.first_retry * 2 ** (tries - 1))
            delay *= random.uniform(0.8, 1.2)  # receivers that came back are not hit all at once
            await self.store.retry_later(delivery.id, now + delay, error)
            self._workers.wake_later(ticket_id, delay)
            return

    async def _send(self, delivery: Delivery) -> str | None:
        signer = self.signers.get(delivery.agent)
        if signer is None:
            return f"no token for agent {delivery.agent!r} (HANDOFF_MCP_TOKENS) to sign with"
        body = delivery.body.encode()
        # the moment of sending (receivers refuse stale timestamps), not the desk's clock
        stamp = dt.datetime.fromtimestamp(int(time.time()), dt.UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "Handoff-Webhooks/1",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signer.sign(delivery.webhook_id, stamp, body),
        }
        try:
            status = await self.post(delivery.url, body, headers)
        except Exception as exc:  # unreachable, refused, timed out: retried
            return f"{type(exc).__name__}: {exc}"[:300]
        return None if 200 <= status < 300 else f"HTTP {status}"

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await self._workers.close()
        await self._http.close()


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, keeping only addresses a webhook may reach: a name an agent gives
    (``https://hooks.example.com``) that resolves into a private network or to the cloud's
    metadata address is refused when the request is made, on the very addresses it connects to
    (no second lookup an attacker's DNS could answer differently)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        public = [r for r in found if not internal_ip(ipaddress.ip_address(r["host"]))]
        if not public:
            raise OSError(f"{host} resolves only to private or link-local addresses: not called")
        return public

    async def close(self) -> None:
        await self.inner.close()


class _Poster:
    """One HTTP client for every delivery (its connections reused), made on first use."""

    def __init__(self) -> None:
        self._session: Any = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10),
                connector=aiohttp.TCPConnector(resolver=PublicResolver()),
            )
        async with self._session.post(
            url, data=body, headers=dict(headers), allow_redirects=False
        ) as response:
            return int(response.status)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
