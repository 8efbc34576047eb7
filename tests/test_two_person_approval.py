"""Two-person approval: distinct operators must approve; the same person twice counts once, one
deny denies, an edit starts the count again, and the action runs (or 'approved' is returned) once,
when the last approval lands. Through the real bot: buttons, forms and the MCP endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from tests.conftest import eventually_async
from tests.desk_support import Desk, refund_ticket, refunded_cents
from tests.dpytest_ext import Interactions, make_operator
from tests.support import test_policy
from tests.test_agents import Agents


@pytest.fixture
async def people(harness) -> AsyncIterator[Any]:
    """Four operators (2, 3, 4, 5) and customers 0 and 1; [risk] approvers_above = 50."""
    policy = test_policy(risk={"approvers_above": 50}, agents={"approvers": {"block_card": 2}})
    await harness.start(members=6, policy=policy)
    for i in (2, 3, 4, 5):
        harness.members[i] = make_operator(harness.bot, harness.members[i])
    desk = Desk(harness, Interactions(harness.bot))
    world = Agents(desk)
    await world.serve()
    yield world
    await world.stop()
    desk.i.close()


def op(world: Agents, i: int) -> discord.Member:
    return world.desk.h.members[i]


async def card_field(world: Agents, number: int, name: str) -> str | None:
    embed = (await world.desk.staff_message(number)).embeds[0]
    return next((f.value for f in embed.fields if f.name.startswith(name)), None)


async def audit(world: Agents, action: str) -> int:
    rows = await world.desk.h.fetch("SELECT COUNT(*) FROM audit WHERE action = ?", (action,))
    return rows[0][0]


async def test_two_distinct_operators_approve_an_agents_request(people):
    call = asyncio.create_task(
        people.call(
            "request_approval",
            action="payout",
            details={"account": "A-17"},
            amount=900,
            currency="EUR",
            approvers=2,
            wait_seconds=30,
        )
    )
    await people.posted(1)
    assert await card_field(people, 1, "Approvals") == "0 of 2 so far"
    await people.desk.click(1, "approve", member=op(people, 2))
    first = op(people, 2).display_name
    assert (await people.desk.told(1))[-1] == (
        f"Your approval of ticket #1 is recorded (1 of 2: {first}). 1 more operator must"
        " approve; nothing is done until then.",
        True,
    )
    assert await card_field(people, 1, "Approvals") == f"1 of 2: {first}"
    await people.desk.click(1, "approve", member=op(people, 2))  # the same person again
    told, _ = (await people.desk.told(2))[-1]
    assert told.startswith("You already approved ticket #1 (1 of 2")
    await asyncio.sleep(0.2)
    assert not call.done(), "one person twice is one approval"
    await people.desk.click(1, "approve", member=op(people, 3))
    result = (await asyncio.wait_for(call, 10)).structured_content
    both = f"{first}, {op(people, 3).display_name}"
    assert result["status"] == "approved" and result["decided_by"] == both
    assert await audit(people, "approval_recorded") == 1 and await audit(people, "approved") == 1
    await eventually_async(
        lambda: card_field(people, 1, "Approvals"), lambda v: v is None, "the card refreshed"
    )


async def test_one_deny_after_an_approval_denies(people):
    call = asyncio.create_task(
        people.call(
            "request_approval", action="block_card", details={"card": "4242"}, wait_seconds=30
        )
    )
    await people.posted(1)
    assert await card_field(people, 1, "Approvals") == "0 of 2 so far", "[agents] approvers"
    await people.desk.click(1, "approve", member=op(people, 2))
    await people.desk.told(1)
    seen = await people.desk.screen(1)  # a third operator's screen, not yet refreshed
    people.desk.i.submit_modal(
        "ticket:deny-reason:1",
        {"reason": "the customer is travelling"},
        member=op(people, 3),
        channel=people.desk.h.bot.get_channel(people.desk.h.bot.settings.staff_channel_id),
    )
    result = (await asyncio.wait_for(call, 10)).structured_content
    assert result["status"] == "denied" and result["reason"] == "the customer is travelling"
    await people.desk.click(1, "approve", member=op(people, 4), seen=seen)
    told, _ = (await people.desk.told(3))[-1]
    assert told == f"Ticket #1 was already denied by {op(people, 3).display_name}."


async def test_two_second_approvers_at_once_make_one_decision(people):
    call = asyncio.create_task(
        people.call(
            "request_approval", action="payout", details={}, amount=10, approvers=2, wait_seconds=30
        )
    )
    await people.posted(1)
    await people.desk.click(1, "approve", member=op(people, 2))
    await people.desk.told(1)
    message = await people.desk.staff_message(1)
    staff = people.desk.h.bot.get_channel(people.desk.h.bot.settings.staff_channel_id)
    for i in (3, 4):  # two clicks in the same moment
        people.desk.i.click(
            "ticket:approve:1", member=op(people, i), channel=staff, message=message
        )
    told = [t for t, _ in (await people.desk.told(3))[1:]]
    assert (await asyncio.wait_for(call, 10)).structured_content["status"] == "approved"
    assert sorted(t.split(" ")[0] for t in told) == ["Approved", "Ticket"], told
    assert await audit(people, "approved") == 1


async def test_an_edit_by_the_second_person_starts_the_count_again(people):
    call = asyncio.create_task(
        people.call(
            "request_approval",
            action="discount",
            details={"percent": 20},
            approvers=2,
            wait_seconds=30,
        )
    )
    await people.posted(1)
    await people.desk.click(1, "approve", member=op(people, 2))
    await people.desk.told(1)
    await people.desk.click(1, "edit", member=op(people, 3))
    people.desk.i.submit_modal(
        "ticket:edit-params:1",
        {"percent": "15"},
        member=op(people, 3),
        channel=people.desk.h.bot.get_channel(people.desk.h.bot.settings.staff_channel_id),
    )
    told, _ = (await people.desk.told(2))[-1]
    assert f"(1 of 2: {op(people, 3).display_name})" in told
    thread = await people.desk.thread(1)
    said = [m.content async for m in thread.history(limit=10)]
    assert any("the count starts again" in m for m in said), said
    assert not call.done()
    await people.desk.click(1, "approve", member=op(people, 2))  # agrees with the edited details
    result = (await asyncio.wait_for(call, 10)).structured_content
    assert result["status"] == "edited" and result["details"] == {"percent": 15}


async def test_a_customers_refund_above_the_limit_runs_once_after_the_second_approval(people):
    desk = people.desk
    await refund_ticket(desk, amount=60, order_id=2)
    desk.h.sent()
    await desk.click(1, "approve", member=op(people, 2))
    await desk.told(1)
    assert await refunded_cents(desk.h) == 0, "one approval of two: nothing runs"
    assert desk.h.sent() == [], "the customer hears nothing yet"
    await desk.click(1, "approve", member=op(people, 3))
    told, _ = (await desk.told(2))[-1]
    assert told.startswith("Approved and done: ticket #1")
    assert await refunded_cents(desk.h) == 6000
    [dm] = desk.h.sent()
    assert "approved and done" in dm.content
    assert await audit(people, "action_executed") == 1
    result = await desk.h.fetch("SELECT result FROM tickets WHERE id = 1")
    assert json.loads(result[0][0])["status"] == "executed"


async def test_bad_approvers_are_a_tool_error(people):
    result = await people.call(
        "request_approval", action="payout", details={}, approvers=9, wait_seconds=0
    )
    assert result.is_error and "approvers must be 1 to 5" in result.content[0].text
