"""Catch-up after a start: what customers and operators wrote while the bot was down is handled
once, in order."""

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
    """The gateway session is ready, as discord.py dispatches it; wait until the catch-up is
    done."""
    runs = h.bot.catch_up.runs
    h.bot.dispatch("ready")
    await eventually(lambda: h.bot.catch_up.runs > runs, what="the catch-up")
    await asyncio.sleep(0)
    await h.settle()


async def new_session(h) -> None:
    """The gateway drops (discord.py dispatches on_disconnect: the bot notes where reading
    resumes)."""
    h.bot.dispatch("disconnect")
    await eventually(lambda: h.bot.catch_up.points is not None, what="the reading points")


async def known_then_restarted(harness, *, policy=None):
    """Customer 0 wrote once (their DM channel is known); the bot restarts. Returns their DM
    channel."""
    await harness.start(**({"policy": policy} if policy else {}))
    harness.fake.default = echo
    await harness.dm(0, "hello")
    harness.sent()
    channel = harness.members[0].dm_channel
    await harness.restart(**({"policy": policy} if policy else {}))
    return channel


async def test_dms_sent_while_down_are_answered_once_in_order(harness, caplog):
    channel = await known_then_restarted(harness)
    for words in ("where is my parcel?", "and can I change the address?"):
        dpytest_ext.missed_message(channel, harness.members[0], words)
    with caplog.at_level(logging.INFO, logger="cogs.discord.catch_up"):
        await ready(harness)
    assert [m.content for m in harness.sent()] == ["Answer to: and can I change the address?"]
    seen_by_claude = str(harness.fake.requests[-1]["messages"])
    assert seen_by_claude.index("where is my parcel?") < seen_by_claude.index("change the address")
    turns = await harness.fetch(
        "SELECT content, status FROM turns WHERE kind = 'customer' ORDER BY id"
    )
    assert [tuple(t) for t in turns] == [
        ("hello", "answered"),
        ("where is my parcel?", "answered"),
        ("and can I change the address?", "answered"),
    ]
    assert "1 channel(s) checked (1 DM, 0 ticket thread), 2 message(s) caught up" in caplog.text

    # A second session reads the whole window again (as a channel's first read does): nothing twice.
    await harness.db.execute("UPDATE customers SET dm_read_back = 0")
    await new_session(harness)
    await ready(harness)
    assert harness.sent() == []
    assert len(await harness.fetch("SELECT id FROM turns WHERE kind = 'customer'")) == 3


async def test_a_live_message_before_the_catch_up_does_not_hide_the_missed_ones(harness):
    channel = await known_then_restarted(harness)
    dpytest_ext.missed_message(channel, harness.members[0], "sent while you were down")
    await harness.dm(0, "sent just after the start")  # arrives live before the session is ready
    await ready(harness)
    stored = [
        t[0]
        for t in await harness.fetch(
            "SELECT content FROM turns WHERE kind = 'customer' ORDER BY id"
        )
    ]
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


async def test_a_take_over_conversation_written_while_down_is_relayed_once_even_when_read_again(
    desk,
):
    h = desk.h
    await open_question(desk)
    thread = await desk.thread(1)
    # from now on every operator message in the thread goes to the customer
    await desk.slash("takeover", 1)
    await desk.told(1)
    h.sent()
    await start_again(desk)
    for words in ("Hi, Sam here.", "Your mug ships today."):
        dpytest_ext.missed_message(thread, desk.operator, words)
    await ready(h)
    assert [m.content.split(": ", 1)[-1] for m in h.sent()] == [
        "Hi, Sam here.",
        "Your mug ships today.",
    ]
    await new_session(h)
    h.bot.catch_up.points.threads = [(thread.id, thread.id)]  # read the whole thread again
    await ready(h)
    assert h.sent() == [], "nothing relayed twice"


async def test_catch_up_can_be_turned_off(harness):
    from tests.support import test_policy

    channel = await known_then_restarted(
        harness, policy=test_policy(delivery={"catch_up_hours": 0})
    )
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
    stored = [
        t[0]
        for t in await harness.fetch(
            "SELECT content FROM turns WHERE kind = 'customer' ORDER BY id"
        )
    ]
    assert stored == ["hello?", "my first message, sent while you were down"]
    await harness.restart()
    # Read back once: from now on reading resumes after the newest stored message, not
    # catch_up_hours back.
    [(newest,)] = await harness.fetch("SELECT MAX(discord_message_id) FROM turns")
    assert harness.bot.catch_up.points.dms == [(channel.id, newest)]
    await ready(harness)
    assert len(await harness.fetch("SELECT id FROM turns WHERE kind = 'customer'")) == 2
