"""A graceful stop (SIGTERM from systemd, Ctrl-C): no new work, answers in flight delivered, nothing
lost."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from runner import SignalStop
from tests.conftest import eventually
from tests.fake_claude import text


async def test_sigterm_lets_an_answer_in_flight_finish_and_keeps_later_messages(harness, caplog):
    h = harness
    bot = await h.start()
    bot.shutdown_grace_seconds = 5
    received = SignalStop(bot).received
    h.fake.then(text("Your order ships tomorrow.", delay=0.5))
    await h.dm(0, "when does my order ship?", settle=False)
    await eventually(lambda: h.fake.requests, what="Claude being asked")

    with caplog.at_level(logging.INFO, logger="handoff"):
        os.kill(os.getpid(), signal.SIGTERM)
        await eventually(lambda: received, what="the signal")
        # arrives while stopping: stored, answered after the next start
        await h.dm(1, "hello?", settle=False)
        await eventually(lambda: bot.is_closed(), within=10, what="the bot to close")
    assert received == ["SIGTERM"]
    assert [m.content for m in h.sent()] == ["Your order ships tomorrow."], (
        "the answer in flight was delivered"
    )
    assert bot.shutdown_report == "in-flight work finished"
    assert any("SIGTERM received" in r.getMessage() for r in caplog.records)
    [(status,)] = await h.fetch("SELECT status FROM turns WHERE content = 'hello?'")
    assert status == "pending"

    h.fake.then(text("Hi! How can I help?"))
    await h.restart()
    await h.settle()
    assert [m.content for m in h.sent()] == ["Hi! How can I help?"]


async def test_a_stop_does_not_wait_longer_than_its_grace(harness):
    h = harness
    bot = await h.start()
    bot.shutdown_grace_seconds = 0.3
    h.fake.then(text("slow", delay=5))
    await h.dm(0, "hi", settle=False)
    await eventually(lambda: h.fake.requests, what="Claude being asked")
    started = asyncio.get_running_loop().time()
    await bot.close()
    assert asyncio.get_running_loop().time() - started < 2
    assert "stopped" in bot.shutdown_report
    [(status,)] = await h.fetch("SELECT status FROM turns WHERE kind = 'customer'")
    assert status == "pending", "the message is answered after the next start"
