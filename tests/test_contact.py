"""/contact: an operator writes to someone first."""

from __future__ import annotations

from tests.conftest import eventually
from tests.fake_claude import text


async def test_an_operator_writes_first_and_the_reply_comes_to_the_thread(desk):
    h = desk.h
    await desk.slash(
        "contact", None, user=h.members[1], message="Hi! Your order 4411 is delayed by a day."
    )
    [(said, _)] = await desk.told(1)
    assert said.startswith("Sent to") and "as ticket #1" in said
    await eventually(lambda: h.bot.outbox.busy is False, what="the DM")
    await h.settle()
    [dm] = h.sent()
    assert "Your order 4411 is delayed by a day." in dm.content
    [(channel,)] = await h.fetch(
        "SELECT dm_channel_id FROM customers WHERE discord_id = ?", (h.members[1].id,)
    )
    assert dm.channel.id == channel  # a DM opened once, and kept
    row = await desk.ticket(1)
    assert row["source"] == "operator" and row["takeover_by"] == desk.operator.id
    h.fake.then(text("should not be asked"))
    await h.dm(1, "Thanks, no problem")
    await eventually(
        lambda: any("Thanks, no problem" in m.content for m in h.staff()),
        what="the reply in the thread",
    )
    assert h.fake.requests == []  # the operator is talking with them: Claude stays out


async def test_contact_is_refused_for_closed_dms_and_blocked_users(desk):
    h = desk.h
    await h.dm(0, "hello")  # a customer we know
    h.sent()
    await h.db.execute("UPDATE customers SET dm_status = 'closed', dm_closed_at = 1")
    await desk.slash("contact", None, user=h.members[0], message="Are you there?")
    assert "DMs are closed" in (await desk.told(1))[-1][0]
    await desk.slash("block", None, customer=h.members[1], reason="spam")
    await desk.told(2)
    await desk.slash("contact", None, user=h.members[1], message="Hello")
    assert "is blocked" in (await desk.told(3))[-1][0]
    await desk.slash("contact", None, member=desk.stranger, user=h.members[1], message="Hello")
    assert (await desk.told(4))[-1][0].startswith("Only operators")
    assert await h.fetch("SELECT id FROM tickets") == []
