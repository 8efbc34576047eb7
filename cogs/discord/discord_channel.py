"""The engine's CustomerChannel port, implemented with discord.py DMs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import discord

from cogs.discord.confirm_views import confirmation_view
from core.pacer import Pacer, Priority, current_request, request_priority
from core.ports import DeliveryFailed, DeliveryRefused

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
CANNOT_DM_USER = 50007
TYPING_REFRESH_SECONDS = 9  # Discord shows "typing" for 10 s after each POST /typing


TRANSIENT_ERRORS = (discord.RateLimited, aiohttp.ClientError, TimeoutError, OSError)


def delivery_failure(exc: Exception) -> DeliveryFailed:
    """Discord's error as the engine's: 429, 5xx and network errors are worth retrying; other 4xx
    are not."""
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429 or exc.status >= 500:
            return DeliveryFailed(f"Discord {exc.status}: {exc.text or 'no detail'}")
        return DeliveryFailed(
            f"Discord rejected the request ({exc.status}, code {exc.code}): {exc.text}",
            permanent=True,
        )
    return DeliveryFailed(f"{type(exc).__name__}: {exc}")


def route_key(method: str, url: str) -> str:
    """A request's rate-limit route: "POST /channels/123/messages", the major id (channel, guild,
    webhook) kept and any other id folded, as Discord scopes its buckets."""
    base = discord.http.Route.BASE
    path = (
        url[len(base) :]
        if url.startswith(base)
        else "/" + url.split("://", 1)[-1].split("/", 1)[-1]
    )
    parts = path.split("?", 1)[0].strip("/").split("/")
    major = parts[0] in ("channels", "guilds", "webhooks") and len(parts) > 1
    folded = [p if (i == 1 and major) or not p.isdigit() else "{id}" for i, p in enumerate(parts)]
    return f"{method} /{'/'.join(folded)}"


def rate_limit_trace(pacer: Pacer) -> aiohttp.TraceConfig:
    """discord.py's HTTP session reports each answer's status and rate-limit headers to the
    pacer."""
    trace = aiohttp.TraceConfig()

    async def on_request_end(
        session: Any, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        pacer.observe(
            route_key(params.method, str(params.url)),
            params.response.status,
            params.response.headers,
        )

    trace.on_request_end.append(on_request_end)
    return trace


class NotLeading(RuntimeError):
    """A request refused before it left: this process's lease may have run out (another one
    leads)."""


class RequestGuard:
    """No request the bot starts is ever cancelled inside discord.py, and a wedged client is
    noticed.

    discord.py clears its global rate-limit event before sleeping out a global 429 and sets it again
    after the sleep (``HTTPClient.request``); a request cancelled during that sleep leaves the event
    cleared for good, and every later request waits on it forever: the bot goes silent. Each request
    therefore runs in its own task, shielded: a caller that stops waiting (a worker closing, a wait
    with a time-out) leaves the request to finish, and the event to be set again.

    ``stalled()`` is the watchdog's question: has a request been waiting longer than any rate limit
    explains? ``recover()`` releases discord.py's global lock if it was left taken.
    """

    def __init__(
        self,
        http: discord.http.HTTPClient,
        *,
        stall_seconds: float,
        pacer: Pacer,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        self.http = http
        self.stall_seconds = stall_seconds
        self.pacer = pacer
        # request -> when it started (loop time)
        self.in_flight: dict[asyncio.Task[Any], float] = {}
        request = http.request

        async def shielded(route: discord.http.Route, **kwargs: Any) -> Any:
            key = route_key(route.method, route.url)
            priority, wanted = current_request()
            # its turn under the budget (cancellable: nothing sent yet)
            await pacer.acquire(key, priority, wanted)
            if may_send is not None and not may_send():
                # A standby may hold the lease by now (core/leadership.py): nothing leaves this
                # process.
                raise NotLeading(
                    f"not sent ({route.method} {route.path}): this process no longer leads"
                )
            task = asyncio.ensure_future(request(route, **kwargs))
            self.in_flight[task] = asyncio.get_running_loop().time()
            task.add_done_callback(self._done)
            task.add_done_callback(lambda _: pacer.finish(key))
            return await asyncio.shield(task)

        http.request = shielded  # type: ignore[method-assign]

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.in_flight.pop(task, None)
        if not task.cancelled():
            # retrieved: a caller that gave up must not leave "never retrieved" warnings
            task.exception()

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


def refusal(exc: discord.HTTPException) -> DeliveryRefused | DeliveryFailed:
    """A DM request's failure: closed DMs and unknown users are for good (not retried), the rest as
    usual."""
    if isinstance(exc, discord.Forbidden):
        return DeliveryRefused(f"DMs closed (403, code {exc.code})")
    if isinstance(exc, discord.NotFound):
        return DeliveryRefused(f"unknown user or channel (404, code {exc.code})")
    if exc.code == CANNOT_DM_USER:
        return DeliveryRefused(f"DMs closed (code {exc.code})")
    return delivery_failure(exc)


class DiscordCustomerChannel:
    """DMs addressed by channel id: ``get_partial_messageable`` sends with one request, without
    looking the user up (discord.py keeps DM users and only 128 DM channels in its cache)."""

    def __init__(self, client: discord.Client, pacer: Pacer) -> None:
        self.client = client
        self.pacer = pacer
        self._typing: set[asyncio.Task[None]] = set()

    def _dm(self, channel_id: int) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(channel_id, type=discord.ChannelType.private)

    async def open_dm(self, customer_discord_id: int) -> int:
        try:
            with request_priority(Priority.ANSWER):
                data = await self.client.http.start_private_message(customer_discord_id)
        except discord.HTTPException as exc:
            raise refusal(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc
        return int(data["id"])

    async def send(
        self,
        channel_id: int,
        content: str,
        *,
        nonce: str,
        buttons: list[dict[str, Any]] | None = None,
    ) -> int | None:
        extra: dict[str, Any] = {"view": confirmation_view(buttons)} if buttons else {}
        try:
            with request_priority(Priority.ANSWER):
                message = await self._dm(channel_id).send(
                    content, nonce=nonce, allowed_mentions=NO_PINGS, **extra
                )
        except discord.HTTPException as exc:
            raise refusal(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc
        return message.id

    async def send_file(
        self, channel_id: int, content: str, data: bytes, filename: str, *, nonce: str | None = None
    ) -> int | None:
        try:
            with request_priority(Priority.ANSWER):
                file = discord.File(io.BytesIO(data), filename=filename)
                channel = self._dm(channel_id)
                message = await (
                    channel.send(content, file=file, allowed_mentions=NO_PINGS, nonce=nonce)
                    if nonce is not None
                    else channel.send(content, file=file, allowed_mentions=NO_PINGS)
                )
        except discord.HTTPException as exc:
            raise refusal(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc
        return message.id

    async def edit(self, channel_id: int, message_id: int, content: str) -> None:
        try:
            with request_priority(Priority.ANSWER):
                await (
                    self._dm(channel_id)
                    .get_partial_message(message_id)
                    .edit(content=content, allowed_mentions=NO_PINGS)
                )
        except discord.NotFound:
            return  # the customer's copy is gone (deleted): nothing to edit
        except discord.HTTPException as exc:
            raise delivery_failure(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc

    async def delete(self, channel_id: int, message_id: int) -> None:
        try:
            with request_priority(Priority.ANSWER):
                await self._dm(channel_id).get_partial_message(message_id).delete()
        except discord.NotFound:
            return  # gone already
        except discord.HTTPException as exc:
            raise delivery_failure(exc) from exc
        except TRANSIENT_ERRORS as exc:
            raise delivery_failure(exc) from exc

    @contextlib.asynccontextmanager
    async def typing(self, channel_id: int) -> AsyncIterator[None]:
        """A typing indicator beside the body, which never waits for it, fails over it, or cancels
        it.

        Not discord.py's ``channel.typing()``: that awaits Discord's answer to the first POST
        /typing before its body runs, and cancels its request at the end, which can wedge discord.py
        (see RequestGuard). Here the body runs at once; at its end the loop is told to stop and
        finishes the request it may have in flight.
        """
        stop = asyncio.Event()

        async def keep_typing() -> None:
            try:
                while not stop.is_set():
                    # Typing is the first thing left out when the budget is short: skipped while
                    # requests queue or a crowd uses the pace, and dropped at its turn if the answer
                    # went out meanwhile.
                    if not self.pacer.short_of_budget():
                        with request_priority(Priority.TYPING, wanted=lambda: not stop.is_set()):
                            await self.client.http.send_typing(channel_id)
                    with contextlib.suppress(TimeoutError):
                        # our event, not Discord
                        await asyncio.wait_for(stop.wait(), TYPING_REFRESH_SECONDS)
            except Exception as exc:  # a typing indicator is a nicety; it never fails an answer
                log.debug("no typing indicator in %s: %s", channel_id, exc)

        indicator = asyncio.create_task(keep_typing())
        self._typing.add(indicator)  # a reference until it ends by itself
        indicator.add_done_callback(self._typing.discard)
        try:
            yield
        finally:
            stop.set()
