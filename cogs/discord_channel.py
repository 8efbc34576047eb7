"""The engine's CustomerChannel port, implemented with discord.py DMs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord

from cogs.confirm_views import confirmation_view
from core.ports import DeliveryFailed, DeliveryRefused

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
CANNOT_DM_USER = 50007


TRANSIENT_ERRORS = (discord.RateLimited, aiohttp.ClientError, TimeoutError, OSError)


def delivery_failure(exc: Exception) -> DeliveryFailed:
    """Discord's error as the engine's: 429, 5xx and network errors are worth retrying; other 4xx are not."""
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429 or exc.status >= 500:
            return DeliveryFailed(f"Discord {exc.status}: {exc.text or 'no detail'}")
        return DeliveryFailed(f"Discord rejected the request ({exc.status}, code {exc.code}): {exc.text}",
                              permanent=True)
    return DeliveryFailed(f"{type(exc).__name__}: {exc}")


class DiscordCustomerChannel:
    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def _dm(self, discord_user_id: int) -> discord.DMChannel:
        user = self.client.get_user(discord_user_id) or await self.client.fetch_user(discord_user_id)
        return user.dm_channel or await user.create_dm()

    async def send(self, customer_discord_id: int, content: str, *, nonce: str,
                   buttons: list[dict[str, Any]] | None = None) -> int | None:
        extra: dict[str, Any] = {"view": confirmation_view(buttons)} if buttons else {}
        try:
            channel = await self._dm(customer_discord_id)
            message = await channel.send(content, nonce=nonce, allowed_mentions=NO_PINGS, **extra)
        except discord.Forbidden as exc:
            raise DeliveryRefused(f"DMs closed (403, code {exc.code})") from exc
        except discord.NotFound as exc:
            raise DeliveryRefused(f"unknown user (404, code {exc.code})") from exc
        except discord.HTTPException as exc:
            if exc.code == CANNOT_DM_USER:
                raise DeliveryRefused(f"DMs closed (code {exc.code})") from exc
            raise delivery_failure(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc
        return message.id

    async def send_file(self, customer_discord_id: int, content: str, data: bytes, filename: str) -> None:
        channel = await self._dm(customer_discord_id)
        await channel.send(content, file=discord.File(io.BytesIO(data), filename=filename),
                           allowed_mentions=NO_PINGS)

    @contextlib.asynccontextmanager
    async def typing(self, customer_discord_id: int) -> AsyncIterator[None]:
        """discord.py's typing indicator beside the body, which never waits for it or fails over it.

        ``channel.typing()`` awaits Discord's answer to the first POST /typing before its body
        runs; that round trip (longer under rate limits) would be added to every answer.
        """

        async def keep_typing() -> None:
            try:
                channel = await self._dm(customer_discord_id)
                async with channel.typing():
                    await asyncio.Future()  # until the answer is ready and this task is cancelled
            except Exception as exc:  # a typing indicator is a nicety; it never fails an answer
                log.debug("no typing indicator for %s: %s", customer_discord_id, exc)

        indicator = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            indicator.cancel()
