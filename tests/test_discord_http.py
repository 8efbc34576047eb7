"""discord.py's real HTTP client against a stand-in for Discord's REST API: the bot must never go
silent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest

from cogs.discord.discord_channel import DiscordCustomerChannel, RequestGuard, rate_limit_trace
from core.pacer import Pacer
from tests.conftest import eventually
from tests.fake_discord import FakeDiscord, use_fake_discord

CUSTOMER = 600000000000000001
DM = CUSTOMER + 1  # the stand-in's DM channel of a user
TYPING = "POST /channels/{id}/typing"


@pytest.fixture
async def discord_api() -> AsyncIterator[tuple[FakeDiscord, discord.Client]]:
    server = await FakeDiscord().start()
    with use_fake_discord(server):
        pacer = Pacer(45)
        client = discord.Client(intents=discord.Intents.none(), http_trace=rate_limit_trace(pacer))
        await client.http.static_login("test.token")
        client.pacer = pacer  # type: ignore[attr-defined]
        client.guard = RequestGuard(client.http, stall_seconds=0.5, pacer=pacer)  # type: ignore[attr-defined]
        try:
            yield server, client
        finally:
            await client.close()
            await server.stop()


async def test_a_global_429_during_typing_then_typing_stopped_and_answers_still_go_out(discord_api):
    server, client = discord_api
    channel = DiscordCustomerChannel(client, client.pacer)
    server.script(TYPING, FakeDiscord.global_429(0.3))
    async with channel.typing(DM):
        await eventually(
            lambda: server.count("POST", "/channels/", 429) == 1, what="the global 429"
        )
        # the answer is ready while discord.py sleeps out the global limit
        await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        await channel.send(DM, "Your order ships tomorrow.", nonce="hof1")
        await channel.send(DM, "Anything else?", nonce="hof2")
    assert [m["content"] for m in server.messages[DM]] == [
        "Your order ships tomorrow.",
        "Anything else?",
    ]


async def test_a_request_cancelled_during_a_global_429_does_not_block_later_requests(discord_api):
    server, client = discord_api
    server.script(TYPING, FakeDiscord.global_429(0.3))
    typing = asyncio.create_task(client.http.send_typing(CUSTOMER + 1))
    await eventually(lambda: server.count("POST", "/channels/", 429) == 1, what="the global 429")
    typing.cancel()  # whoever started it gave up; discord.py is sleeping with its global lock taken
    async with asyncio.timeout(5):
        await client.http.send_message(
            CUSTOMER + 1, params=discord.http.handle_message_parameters(content="hi")
        )
    assert server.count("POST", "/channels/", 200) == 1


async def test_the_watchdog_notices_a_wedged_client_and_recovers_it(discord_api):
    _, client = discord_api
    # as a cancelled request used to leave it (before RequestGuard)
    client.http._global_over.clear()
    send = asyncio.create_task(
        client.http.send_message(
            CUSTOMER + 1, params=discord.http.handle_message_parameters(content="owed")
        )
    )
    await asyncio.sleep(0.6)
    stuck, longest = client.guard.stalled()
    assert stuck == 1 and longest > 0.5 and not send.done()
    assert client.guard.recover() is True
    async with asyncio.timeout(5):
        await send
    assert client.guard.stalled() == (0, 0.0) and client.guard.recover() is False


async def test_a_stall_is_logged_counted_and_shown_in_stats(desk, caplog):
    bot = desk.h.bot
    loop = asyncio.get_running_loop()
    stuck = loop.create_future()
    bot.request_guard.in_flight[stuck] = loop.time() - 120  # a request waiting for two minutes
    bot.http._global_over = asyncio.Event()  # discord.py's global lock, left taken
    assert await bot.check_requests() is True
    assert bot.http._global_over.is_set(), "the lock is released"
    assert any(
        "released discord.py's global rate-limit lock" in r.getMessage() for r in caplog.records
    )
    del bot.request_guard.in_flight[stuck]
    stuck.cancel()
    assert await bot.check_requests() is False
    await desk.slash("stats", None, days=1)
    await eventually(lambda: any(r.get("followup") for r in desk.i.responses), what="the summary")
    [summary] = [r["data"]["content"] for r in desk.i.responses if r.get("followup")]
    assert "Discord requests stalled and were recovered 1 time(s)" in summary
    assert "Discord requests today (" in summary and "answered 429" in summary


async def test_a_crowd_of_sends_stays_under_the_limits_and_a_click_is_answered_at_once(discord_api):
    from discord.http import MultipartParameters
    from discord.webhook.async_ import async_context

    server, client = discord_api
    channel = DiscordCustomerChannel(client, client.pacer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sends = [
        asyncio.create_task(channel.send(DM + 2 * i, f"answer {i}", nonce=f"hof{i}"))
        for i in range(135)
    ]
    await asyncio.sleep(0.5)
    assert client.pacer.schedule.waiting > 60, "the queue is saturated"
    clicked = loop.time()
    await async_context.get().create_interaction_response(
        123,
        "token",
        session=client.http._HTTPClient__session,  # type: ignore[attr-defined]
        params=MultipartParameters(payload={"type": 6}, multipart=None, files=None),
    )
    acknowledged = loop.time() - clicked
    async with asyncio.timeout(10):
        await asyncio.gather(*sends)
    took = loop.time() - started
    assert acknowledged < 0.5, f"a click waited {acknowledged:.2f} s behind the queue"
    assert server.count("POST", "/channels/", 429) == 0
    assert sum(len(m) for m in server.messages.values()) == 135
    # paced at 45 a second, not faster, not much slower
    assert 135 / 45 - 0.2 <= took <= 135 / 45 + 1.5
    assert client.pacer.figures().paced >= 135


async def test_a_file_is_sent_once_with_its_nonce(discord_api):
    server, client = discord_api
    channel = DiscordCustomerChannel(client, client.pacer)
    for _ in range(2):  # a retry with the same nonce: Discord keeps the first
        await channel.send_file(
            DM,
            "Your copy of ticket #1:",
            b"<html>hi</html>",
            "ticket-1-transcript.html",
            nonce="hof7",
        )
    [message] = server.messages[DM]
    assert message["content"] == "Your copy of ticket #1:"
    assert [a["filename"] for a in message["attachments"]] == ["ticket-1-transcript.html"]
    assert server.files[0] == ("ticket-1-transcript.html", b"<html>hi</html>")
