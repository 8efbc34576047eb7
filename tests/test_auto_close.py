"""Quiet tickets: "anything else?" after [desk] auto_close_hours, closed after the grace time,
across a restart."""

from __future__ import annotations

from tests.desk_support import ask_then_wait
from tests.support import test_policy

POLICY = {"auto_close_hours": 24, "auto_close_grace_hours": 12}


async def test_a_quiet_ticket_is_warned_then_closed_even_across_a_restart(harness):
    policy = test_policy(desk=POLICY)
    await harness.start(policy=policy)
    harness.fake.default = ask_then_wait
    await harness.dm(0, "is the mug dishwasher safe?")
    harness.sent()
    harness.clock.advance(23 * 3600)
    await harness.bot.deadlines.run_due()
    await harness.settle()
    assert not any("Anything else" in m.content for m in harness.sent())  # not quiet long enough
    harness.clock.advance(2 * 3600)
    await harness.bot.deadlines.run_due()
    await harness.bot.deadlines.run_due()  # a second run sends nothing more
    await harness.settle()
    [warning] = [m for m in harness.sent() if "Anything else" in m.content]
    assert warning.content.startswith(
        "Anything else about ticket #1? If not, it closes in 12 hours"
    )
    await harness.restart(policy=policy)
    harness.clock.advance(12 * 3600 + 1)
    await harness.bot.deadlines.run_due()
    await harness.settle()
    row = (await harness.fetch("SELECT status, close_reason FROM tickets"))[0]
    assert tuple(row) == ("closed", "no activity for 24 hours")


async def test_a_reply_after_the_warning_keeps_the_ticket_open(harness):
    policy = test_policy(desk=POLICY)
    await harness.start(policy=policy)
    harness.fake.default = ask_then_wait
    await harness.dm(0, "is the mug dishwasher safe?")
    harness.clock.advance(25 * 3600)
    await harness.bot.deadlines.run_due()
    harness.clock.advance(3600)
    await harness.dm(0, "yes, I'm still waiting for the answer")
    harness.clock.advance(12 * 3600)
    await harness.bot.deadlines.run_due()
    assert (await harness.fetch("SELECT status FROM tickets WHERE id = 1"))[0][0] != "closed"
