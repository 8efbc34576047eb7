"""Catch-up after a start: what customers and operators wrote while the bot was down is handled once, in order."""

from __future__ import annotations

import asyncio
import logging

from tests import dpytest_ext
from tests.conftest import eventually
from tests.desk_support import open_question, start_again
from tests.fake_claude import last_user_text, text


def echo(request: dict) -> object:
    return text(f"Answer to: {last_user_text(request)}")


async def ready(h) -> None:
    """The gateway session is ready, as discord.py dispatches it; wait until the catch-up is done."""
    h.bot.dispatch("ready")
    await eventually(lambda: h.bot.catch_up.points is None, what="the catch-up")
    await asyncio.sleep(0)
    await h.settle()


async def test_dms_sent_while_down_are_answered_once_in_order(harness, caplog):
    await harness.start()
    harness.fake.default = echo
    await harness.dm(0, "hello")
    channel = harness.members[0].dm_channel
    harness.sent()
    await harness.restart()
    for words in ("where is my parcel?", "and can I change the address?"):
        dpytest_ext.missed_message(channel, harness.members[0], words)
    with caplog.at_level(logging.INFO, logger="cogs.discord.catch_up"):
        await ready(harness)
    assert [m.content for m in harness.sent()] == ["Answer to: and can I change the address?"]
    seen_by_claude = str(harness.fake.requests[-1]["messages"])
    assert seen_by_claude.index("where is my parcel?") < seen_by_claude.index("change the address")
    turns = await harness.fetch("SELECT content, status FROM turns WHERE kind = 'customer' ORDER BY id")
    assert [tuple(t) for t in turns] == [("hello", "answered"), ("where is my parcel?", "answered"),
                                         ("and can I change the address?", "answered")]
    assert "1 channel(s) checked (1 DM, 0 ticket thread), 2 message(s) caught up" in caplog.text

    await ready(harness)  # the same messages again (a second session): nothing is handled twice
    assert harness.sent() == []
    assert len(await harness.fetch("SELECT id FROM turns WHERE kind = 'customer'")) == 3


async def test_a_live_message_before_the_catch_up_does_not_hide_the_missed_ones(harness):
    await harness.start()
    harness.fake.default = echo
    await harness.dm(0, "hello")
    channel = harness.members[0].dm_channel
    harness.sent()
    await harness.restart()
    dpytest_ext.missed_message(channel, harness.members[0], "sent while you were down")
    await harness.dm(0, "sent just after the start")  # arrives live before the session is ready
    await ready(harness)
    stored = [t[0] for t in await harness.fetch("SELECT content FROM turns WHERE kind = 'customer' ORDER BY id")]
    assert stored == ["hello", "sent just after the start", "sent while you were down"]


async def test_an_operators_answer_written_while_down_is_relayed_once(desk):
    h = desk.h
    await open_question(desk)
    thread = await desk.thread(1)
    await start_again(desk)
    dpytest_ext.missed_message(thread, desk.stranger, "I am not an operator")
    dpytest_ext.missed_message(thread, desk.operator, "// a note: check the supplier")
    dpytest_ext.missed_message(thread, desk.operator, "Yes, it is dishwasher safe.")
    await ready(h)
    dms = [m.content for m in h.sent()]
    assert len(dms) == 1 and "Yes, it is dishwasher safe." in dms[0]
    assert all("note" not in m and "not an operator" not in m for m in dms)
    row = await desk.ticket(1)
    assert row["status"] == "answered" and row["answer"] == "Yes, it is dishwasher safe."
    await ready(h)  # again: nothing relayed twice
    assert h.sent() == []


async def test_catch_up_can_be_turned_off(harness):
    from tests.support import test_policy

    policy = test_policy(delivery={"catch_up_hours": 0})
    await harness.start(policy=policy)
    harness.fake.default = echo
    await harness.dm(0, "hello")
    channel = harness.members[0].dm_channel
    harness.sent()
    await harness.restart(policy=policy)
    dpytest_ext.missed_message(channel, harness.members[0], "sent while you were down")
    dpytest_ext.requests_made.clear()
    harness.bot.dispatch("ready")
    await asyncio.sleep(0.2)
    await harness.settle()
    assert harness.sent() == [] and dpytest_ext.requests_made["logs_from"] == 0


async def test_a_first_dm_sent_while_down_is_found_once_the_channel_is_known(harness):
    await harness.start()
    harness.fake.default = echo
    newcomer = harness.members[1]
    channel = newcomer.dm_channel or await newcomer.create_dm()
    await harness.restart()
    dpytest_ext.missed_message(channel, newcomer, "my first message, sent while you were down")
    await ready(harness)  # nobody knows this DM channel yet: Discord lists no DM channels
    assert await harness.fetch("SELECT id FROM turns") == []
    await harness.dm(1, "hello?")  # the channel becomes known
    harness.sent()
    await harness.restart()
    await ready(harness)
    stored = [t[0] for t in await harness.fetch("SELECT content FROM turns WHERE kind = 'customer' ORDER BY id")]
    assert stored == ["hello?", "my first message, sent while you were down"]
    await harness.restart()
    dpytest_ext.requests_made.clear()
    await ready(harness)  # read back once: from now on only after the newest stored message
    assert len(await harness.fetch("SELECT id FROM turns WHERE kind = 'customer'")) == 2
