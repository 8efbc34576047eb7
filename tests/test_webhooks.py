"""Push, not only poll: an agent's notify_url gets its ticket's outcome POSTed, signed as Standard
Webhooks are, from an outbox that retries with backoff and survives restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver
from standardwebhooks import Webhook

from core.webhooks import PublicResolver, notify_url_problem, webhook_secret
from tests.conftest import eventually_async
from tests.desk_support import start_again
from tests.test_agents import PRICING, TOKENS, Agents


class Receiver:
    """An agent's webhook endpoint on 127.0.0.1: answers with the scripted statuses, then 200."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def verified(self, i: int = -1) -> Any:
        headers, body = self.got[i]
        return Webhook(webhook_secret(TOKENS[PRICING])).verify(body, headers)

    async def deliveries(self, count: int, within: float = 10) -> None:
        for _ in range(int(within / 0.02)):
            if len(self.got) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.got)} of {count} webhooks arrived")


@pytest.fixture
async def world(desk) -> AsyncIterator[tuple[Agents, Receiver]]:
    agents, receiver = Agents(desk), Receiver()
    await agents.serve()
    await receiver.start()
    desk.h.bot.app.webhooks.first_retry = 0.05  # backoff in tens of milliseconds here
    yield agents, receiver
    await agents.stop()
    await receiver.stop()


async def test_an_answer_is_posted_once_signed_as_get_result_returns_it(world):
    agents, receiver = world
    asked = await agents.call(
        "ask_human", question="Open on Sunday?", notify_url=receiver.url, wait_seconds=0
    )
    assert asked.structured_content == {"ticket": 1, "status": "waiting"}
    await agents.posted(1)
    await agents.desk.write(1, "Yes, 10 to 4.")
    await receiver.deliveries(1)
    result = (await agents.call("get_result", ticket=1)).structured_content
    assert receiver.verified() == result and result["status"] == "answered"
    headers, _ = receiver.got[0]
    assert headers["webhook-id"] == "handoff-ticket-1-answered"
    await asyncio.sleep(0.3)
    assert len(receiver.got) == 1, "one outcome, one delivery"
    # a forged or altered body does not verify
    forged = dict(headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(webhook_secret(TOKENS[PRICING])).verify(b'{"status": "approved"}', forged)


async def test_a_failing_receiver_gets_it_again_with_backoff(world):
    agents, receiver = world
    receiver.statuses = [500, 500]
    await agents.call(
        "request_approval",
        action="refund",
        details={"order": 4411},
        notify_url=receiver.url,
        wait_seconds=0,
    )
    await agents.posted(1)
    await agents.desk.click(1, "approve")
    await receiver.deliveries(3)
    assert [h["webhook-id"] for h, _ in receiver.got] == ["handoff-ticket-1-approved"] * 3
    assert receiver.verified()["status"] == "approved"

    async def row() -> tuple[Any, ...]:
        [found] = await agents.desk.h.fetch(
            "SELECT attempts, delivered_at IS NOT NULL, last_error FROM webhook_outbox"
        )
        return tuple(found)

    # the receiver has the body before the bot has its answer and writes it down
    await eventually_async(row, lambda r: r == (3, 1, None), "the delivery recorded")


async def test_a_delivery_owed_when_the_bot_stops_is_made_after_it_starts(world):
    agents, receiver = world
    receiver.statuses = [503]
    await agents.call(
        "ask_human", question="Ship to Madeira?", notify_url=receiver.url, wait_seconds=0
    )
    await agents.posted(1)
    await agents.desk.write(1, "Yes.")
    await receiver.deliveries(1)  # refused once; the bot stops before the retry
    await agents.stop()
    await start_again(agents.desk)
    await agents.serve()
    await receiver.deliveries(2)
    assert receiver.verified()["answer"] == "Yes."
    assert [h["webhook-id"] for h, _ in receiver.got] == ["handoff-ticket-1-answered"] * 2


async def test_an_outcome_the_bot_had_not_queued_is_found_at_start(world):
    agents, receiver = world
    webhooks = agents.desk.h.bot.app.webhooks
    await agents.call(
        "request_approval",
        action="block_card",
        details={"card": "4242"},
        notify_url=receiver.url,
        wait_seconds=0,
    )
    await agents.posted(1)
    # the process dies right after the decision's commit, before queueing its webhook
    agents.desk.h.bot.desk.on_changed.remove(webhooks.ticket_changed)
    await agents.desk.click(1, "approve")
    await agents.desk.told(1)
    await asyncio.sleep(0.2)
    assert receiver.got == []
    await agents.stop()
    await start_again(agents.desk)
    await agents.serve()
    await receiver.deliveries(1)
    assert receiver.verified()["status"] == "approved"


async def test_timed_out_then_answered_are_two_outcomes(world):
    agents, receiver = world
    h = agents.desk.h
    await agents.call("ask_human", question="Anyone?", notify_url=receiver.url, wait_seconds=0)
    await agents.posted(1)
    h.clock.advance(h.bot.policy.timeouts.ticket_answer_seconds + 1)
    await h.bot.deadlines.run_due()
    await receiver.deliveries(1)
    assert receiver.verified()["status"] == "timed_out"
    await agents.desk.write(1, "Sorry, here now: yes.")
    await receiver.deliveries(2)
    assert receiver.verified()["status"] == "answered"


async def test_only_https_or_this_machine_may_receive(world):
    agents, _ = world
    refused = await agents.call(
        "ask_human", question="x?", notify_url="http://example.com/hook", wait_seconds=0
    )
    assert refused.is_error and "must be https://" in refused.content[0].text
    assert await agents.desk.h.fetch("SELECT id FROM tickets") == []
    assert notify_url_problem("https://agents.example.com/hook") is None
    assert notify_url_problem("http://[::1]:9000/hook") is None
    assert notify_url_problem("ftp://example.com/") is not None
    assert notify_url_problem("https:///nohost") is not None
    for inside in (
        "https://169.254.169.254/latest",
        "https://10.0.0.5/hook",
        "https://[fd00::1]/",
        "https://[::ffff:169.254.169.254]/",  # IPv4 mapped into IPv6
        "https://2852039166/latest",  # 169.254.169.254 as the system resolver reads it
        "https://0xa9.0xfe.0xa9.0xfe/",
        "https://10.1/",  # 10.0.0.1
    ):
        assert "private or link-local" in (notify_url_problem(inside) or ""), inside


class Answers(AbstractResolver):
    """A DNS that answers every name with these addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[Any]:
        return [
            {"hostname": host, "host": a, "port": port, "family": 0, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_a_name_that_resolves_inside_is_not_called():
    """A name passes the URL check (names are not resolved then); at delivery only the public
    addresses it resolves to are connected to, and a name with none is not called."""
    mixed = PublicResolver(Answers("10.0.0.7", "93.184.215.14", "::ffff:169.254.169.254"))
    assert [r["host"] for r in await mixed.resolve("hooks.example.com", 443)] == ["93.184.215.14"]
    inside = PublicResolver(Answers("169.254.169.254", "fd00::1"))
    with pytest.raises(OSError, match="private or link-local"):
        await inside.resolve("metadata.attacker.example", 443)


def test_the_agent_can_check_a_body_with_its_own_token():
    from datetime import UTC, datetime

    secret = webhook_secret(TOKENS[PRICING])
    body = json.dumps({"ticket": 7, "status": "denied"}).encode()
    stamp = datetime.now(UTC)
    signature = Webhook(secret).sign("handoff-ticket-7-denied", stamp, body)
    headers = {
        "webhook-id": "handoff-ticket-7-denied",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
    }
    assert Webhook(secret).verify(body, headers) == {"ticket": 7, "status": "denied"}
    other = webhook_secret(TOKENS["fraud-review"])
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(body, headers)


async def test_the_bots_own_client_resolves_through_the_guard():
    from core.webhooks import _Poster

    receiver, poster = Receiver(), _Poster()
    await receiver.start()
    try:
        by_name = receiver.url.replace("127.0.0.1", "localhost")  # resolved: loopback is allowed
        assert await poster.post(by_name, b"{}", {"content-type": "application/json"}) == 200
        assert isinstance(poster._session.connector._resolver, PublicResolver)
    finally:
        await poster.close()
        await receiver.stop()
