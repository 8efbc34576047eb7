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

from cogs.discord.confirm_views import confirmation_view
from core.ports import DeliveryFailed, DeliveryRefused

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
CANNOT_DM_USER = 50007
TYPING_REFRESH_SECONDS = 9  # Discord shows "typing" for 10 s after each POST /typing


TRANSIENT_ERRORS = (discord.RateLimited, aiohttp.ClientError, TimeoutError, OSError)


def delivery_failure(exc: Exception) -> DeliveryFailed:
    """Discord's error as the engine's: 429, 5xx and network errors are worth retrying; other 4xx are not."""
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429 or exc.status >= 500:
            return DeliveryFailed(f"Discord {exc.status}: {exc.text or 'no detail'}")
        return DeliveryFailed(f"Discord rejected the request ({exc.status}, code {exc.code}): {exc.text}",
                              permanent=True)
    return DeliveryFailed(f"{type(exc).__name__}: {exc}")


class RequestGuard:
    """No request the bot starts is ever cancelled inside discord.py, and a wedged client is noticed.

    discord.py clears its global rate-limit event before sleeping out a global 429 and sets it again
    after the sleep (``HTTPClient.request``); a request cancelled during that sleep leaves the event
    cleared for good, and every later request waits on it forever: the bot goes silent. Each request
    therefore runs in its own task, shielded: a caller that stops waiting (a worker closing, a wait
    with a time-out) leaves the request to finish, and the event to be set again.

    ``stalled()`` is the watchdog's question: has a request been waiting longer than any rate limit
    explains? ``recover()`` releases discord.py's global lock if it was left taken.
    """

    def __init__(self, http: discord.http.HTTPClient, *, stall_seconds: float) -> None:
        self.http = http
        self.stall_seconds = stall_seconds
        self.in_flight: dict[asyncio.Task[Any], float] = {}  # request -> when it started (loop time)
        request = http.request

        async def shielded(route: discord.http.Route, **kwargs: Any) -> Any:
            task = asyncio.ensure_future(request(route, **kwargs))
            self.in_flight[task] = asyncio.get_running_loop().time()
            task.add_done_callback(self._done)
            return await asyncio.shield(task)

        http.request = shielded  # type: ignore[method-assign]

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.in_flight.pop(task, None)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that gave up must not leave "never retrieved" warnings

    def stalled(self) -> tuple[int, float]:
        """(requests waiting longer than stall_seconds, the longest wait in seconds)."""
        now = asyncio.get_running_loop().time()
        waits = [now - started for started in self.in_flight.values()]
        stuck = [w for w in waits if w > self.stall_seconds]
        return len(stuck), max(waits, default=0.0)

    def recover(self) -> bool:
        """Release discord.py's global rate-limit lock if it is held; True when it was."""
        event = getattr(self.http, "_global_over", None)
        if isinstance(event, asyncio.Event) and not event.is_set():
            event.set()
            return True
        return False


class DiscordCustomerChannel:
    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._typing: set[asyncio.Task[None]] = set()

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
        """A typing indicator beside the body, which never waits for it, fails over it, or cancels it.

        Not discord.py's ``channel.typing()``: that awaits Discord's answer to the first POST /typing
        before its body runs, and cancels its request at the end, which can wedge discord.py (see
        RequestGuard). Here the body runs at once; at its end the loop is told to stop and finishes
        the request it may have in flight.
        """
        stop = asyncio.Event()

        async def keep_typing() -> None:
            try:
                channel = await self._dm(customer_discord_id)
                while not stop.is_set():
                    await self.client.http.send_typing(channel.id)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), TYPING_REFRESH_SECONDS)  # our event, not Discord
            except Exception as exc:  # a typing indicator is a nicety; it never fails an answer
                log.debug("no typing indicator for %s: %s", customer_discord_id, exc)

        indicator = asyncio.create_task(keep_typing())
        self._typing.add(indicator)  # a reference until it ends by itself
        indicator.add_done_callback(self._typing.discard)
        try:
            yield
        finally:
            stop.set()
