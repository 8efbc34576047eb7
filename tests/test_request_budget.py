"""One request per message sent: the DM channel comes with the customer's message and is kept."""

from __future__ import annotations

from tests import dpytest_ext
from tests.fake_claude import text


async def test_an_answer_is_one_request_no_user_look_up_no_dm_opened(harness):
    await harness.start()
    harness.fake.then(text("Hello!"), text("It shipped."))
    await harness.dm(0, "hi")
    dpytest_ext.requests_made.clear()
    await harness.dm(0, "where is my order?")
    assert [m.content for m in harness.sent()] == ["Hello!", "It shipped."]
    assert dpytest_ext.requests_made["send_message"] == 1
    assert dpytest_ext.requests_made["get_user"] == 0
    assert dpytest_ext.requests_made["start_private_message"] == 0
    [(channel,)] = await harness.fetch("SELECT dm_channel_id FROM customers")
    assert channel == harness.members[0].dm_channel.id


async def test_after_a_restart_answers_still_need_no_look_up(harness):
    await harness.start()
    harness.fake.then(text("Hello!"))
    await harness.dm(0, "hi")
    harness.sent()
    await harness.restart()
    # Owed before the customer writes again (a deadline's notice, an operator's answer): the kept
    # channel.
    customer_id = (await harness.fetch("SELECT id FROM customers"))[0][0]
    dpytest_ext.requests_made.clear()
    await harness.bot.engine.say(customer_id, "Your ticket was answered.", reason="test")
    await harness.bot.outbox.drain()
    [notice] = harness.sent()
    assert notice.content == "Your ticket was answered."
    assert dict(dpytest_ext.requests_made) == {"send_message": 1}


async def test_a_customer_stored_before_channels_were_kept_gets_one_dm_opened_once(harness):
    await harness.start()
    harness.fake.then(text("Hello!"))
    await harness.dm(0, "hi")
    harness.sent()
    # as a database from before migration 10
    await harness.db.execute("UPDATE customers SET dm_channel_id = NULL")
    customer_id = (await harness.fetch("SELECT id FROM customers"))[0][0]
    dpytest_ext.requests_made.clear()
    for n in (1, 2):
        await harness.bot.engine.say(customer_id, f"notice {n}", reason="test")
        await harness.bot.outbox.drain()
    assert [m.content for m in harness.sent()] == ["notice 1", "notice 2"]
    assert dpytest_ext.requests_made["start_private_message"] == 1
    assert dpytest_ext.requests_made["get_user"] == 0
    assert (await harness.fetch("SELECT dm_channel_id FROM customers"))[0][0] == harness.members[
        0
    ].dm_channel.id


def test_a_row_retried_for_days_still_gets_a_capped_wait():
    from core.outbox import backoff_delay

    # 2 ** 1100 does not fit a float: the delivery worker used to die here after ~1,000 tries.
    assert 240 <= backoff_delay(5000, 2, 300) <= 360
    assert 1.6 <= backoff_delay(1, 2, 300) <= 2.4
