"""Delivery of what the bot owes customers, from the outbox table, in order per customer.

discord.py gives up on a send after repeated 429s or server errors and raises; a reply
lost that way is a reply never received. Every owed message is therefore a row written
in the same transaction as the turn it belongs to, and this dispatcher sends the rows one
by one per customer, retrying with capped exponential backoff until Discord takes them.
A permanent refusal (DMs closed) is recorded and stops delivery to that customer.
Each send carries a nonce derived from the row id with ``enforce_nonce``, so if Discord
stored a message but the answer was lost, the retry does not post it twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from core.clock import Clock
from core.ports import CustomerChannel, DeliveryRefused
from core.text import split_message
from core.workers import DeliveryQueue
from storage.conversations import OutboxItem, OutboxStore

log = logging.getLogger(__name__)

UnreachableHook = Callable[[int, str], Awaitable[None]]
# a file Discord refused for good: (customer, the file's name, why)
FileRefusedHook = Callable[[int, str, str], Awaitable[None]]


INSTALL_KEY = "install_id"


async def install_id(db: Any, now: float) -> str:
    """This database's own random id (made once, kept in it, copied by ``--migrate-to``). It is in
    every nonce: within Discord's nonce window a send whose nonce the bot used before is answered
    with the *old* message and nothing is posted, so a database started afresh (row ids from 1
    again), a restored backup or a second deployment on the same bot must never reuse another's
    nonces."""
    value = await db.kept(INSTALL_KEY)
    return (
        value if value is not None else await db.keep_first(INSTALL_KEY, secrets.token_hex(4), now)
    )


def chunk_nonce(prefix: str, row_id: int, chunk: int) -> str:
    """The nonce of one chunk of an owed row: the same on every try (Discord keeps the first).
    ``prefix`` carries the database's install id (``hof`` + 8 hex digits); at most 25 characters as
    Discord allows."""
    return f"{prefix}{row_id}" if chunk == 0 else f"{prefix}{row_id}.{chunk}"


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, times 0.8-1.2."""
    # a float can't hold 2 ** 1100: a row retried long
    delay = min(cap, base * 2 ** min(max(0, attempts - 1), 40))
    return delay * random.uniform(0.8, 1.2)


class Outbox(DeliveryQueue[int]):
    def __init__(
        self,
        store: OutboxStore,
        channel: CustomerChannel,
        clock: Clock,
        *,
        retry_base: float,
        retry_max: float,
        install: str,
    ) -> None:
        super().__init__("outbox")
        self.nonce_prefix = f"hof{install}"
        self.store = store
        self.channel = channel
        self.clock = clock
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.on_unreachable: list[UnreachableHook] = []
        self.on_file_refused: list[FileRefusedHook] = []

    async def _pending_keys(self) -> list[int]:
        return await self.store.customers_with_pending()

    async def _send(self, item: OutboxItem) -> int | None:
        """One owed row as Discord messages: split under 2000 characters here (rows hold whole
        texts), each chunk with its own nonce, so a retry after a partial send posts only what is
        missing; buttons go under the last chunk. One request per chunk: the DM channel is known
        from the customer's messages, or opened once and kept."""
        channel_id = item.dm_channel_id
        if item.change is not None:  # an operator's edit or deletion of a copy already sent
            kind, copy_id = item.change
            if channel_id is None:
                return None  # no copy was ever sent where this could change it
            if kind == "delete":
                await self.channel.delete(channel_id, copy_id)
            else:
                await self.channel.edit(channel_id, copy_id, item.content)
            return None
        if channel_id is None:
            channel_id = await self.channel.open_dm(item.discord_id)
            await self.store.keep_dm_channel(item.customer_id, channel_id)
        chunks = split_message(item.content) or [item.content]
        message_id = None
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if last and item.file is not None:
                message_id = await self.channel.send_file(
                    channel_id,
                    chunk,
                    item.file[1],
                    item.file[0],
                    nonce=chunk_nonce(self.nonce_prefix, item.id, i),
                )
                continue
            message_id = await self.channel.send(
                channel_id,
                chunk,
                nonce=chunk_nonce(self.nonce_prefix, item.id, i),
                buttons=item.buttons if last else None,
            )
        return message_id

    async def _deliver(self, customer_id: int) -> None:
        while (item := await self.store.next_pending(customer_id)) is not None:
            try:
                message_id = await self._send(item)
            except DeliveryRefused as exc:
                count = await self.store.mark_customer_unreachable(
                    item, exc.reason, self.clock.now()
                )
                log.warning(
                    "customer %s cannot receive DMs (%s); %d message(s) not delivered",
                    customer_id,
                    exc.reason,
                    count,
                )
                for hook in self.on_unreachable:
                    await hook(customer_id, exc.reason)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # DeliveryFailed, or anything unexpected: try again later
                error = f"{type(exc).__name__}: {exc}"
                if getattr(exc, "permanent", False):
                    await self.store.mark_failed(item, error, self.clock.now())
                    if item.file is not None:
                        for file_hook in self.on_file_refused:
                            await file_hook(customer_id, item.file[0], error)
                    log.error(
                        "message %s to customer %s rejected for good: %s",
                        item.id,
                        customer_id,
                        error,
                    )
                    continue
                attempts = item.attempts + 1
                delay = backoff_delay(attempts, self.retry_base, self.retry_max)
                await self.store.mark_retry(item.id, error, self.clock.now() + delay)
                log.warning(
                    "send to customer %s failed (attempt %d: %s); retrying in %.1fs",
                    customer_id,
                    attempts,
                    error,
                    delay,
                )
                # Later messages wait behind this one: order per customer matters more than speed.
                await asyncio.sleep(delay)
                continue
            await self.store.mark_sent(item.id, message_id, self.clock.now(), item.buttons)
