"""Escalation chains: a ticket nobody answers or decides mentions the next role at each step of
[desk] escalation, in its thread, once per step, across restarts; the card and /pending show it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.desk_support import desk_with, open_question, start_again
from tests.support import test_policy

LEADS, MANAGERS = 111111111111111111, 222222222222222222
STEPS = [
    {"after_minutes": 15, "mention_role_id": LEADS},
    {"after_minutes": 60, "mention_role_id": MANAGERS},
]


def policy() -> Any:
    # the reminder and time-out come later than the steps, so only escalations are posted
    return test_policy(desk={"escalation": STEPS}, timeouts={"ticket_answer_seconds": 86400})


@pytest.fixture
async def desk(harness) -> AsyncIterator[Any]:
    async with desk_with(harness, policy()) as desk:
        yield desk


def escalations(posts: list[Any]) -> list[str]:
    return [m.content for m in posts if "Escalated" in m.content]


async def card_field(desk: Any, number: int, name: str) -> str | None:
    embed = (await desk.staff_message(number)).embeds[0]
    return next((f.value for f in embed.fields if f.name == name), None)


async def test_each_step_mentions_its_role_once_at_its_time(desk):
    h = desk.h
    await open_question(desk)
    jobs = {job.id: job.next_run_time.timestamp() for job in h.bot.scheduler.get_jobs()}
    assert jobs["ticket-escalation:1"] == pytest.approx(h.clock.now() + 900, abs=1)
    h.clock.advance(899)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert escalations(h.staff()) == [], "not yet"
    h.clock.advance(2)
    await h.bot.deadlines.run_due()
    await h.bot.deadlines.run_due()  # fired twice: once
    await h.settle()
    [first] = escalations(h.staff())
    assert first.startswith(f"<@&{LEADS}> 🔺 Escalated (level 1 of 2): ticket #1 has waited")
    assert await card_field(desk, 1, "Escalated") == f"level 1 of 2 <@&{LEADS}>"
    jobs = {job.id: job.next_run_time.timestamp() for job in h.bot.scheduler.get_jobs()}
    assert jobs["ticket-escalation:1"] == pytest.approx(h.clock.now() + 45 * 60, abs=2)
    await desk.slash("pending", None)
    [(pending, _)] = await desk.told(1)
    assert "escalated (1)" in pending
    h.clock.advance(45 * 60)
    await h.bot.deadlines.run_due()
    await h.settle()
    [second] = escalations(h.staff())
    assert second.startswith(f"<@&{MANAGERS}> 🔺 Escalated (level 2 of 2)")
    h.clock.advance(86000)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert escalations(h.staff()) == [], "the last step was the last"
    audit = await h.fetch("SELECT COUNT(*) FROM audit WHERE action = 'ticket_escalated'")
    assert audit[0][0] == 2


async def test_steps_missed_while_down_are_posted_once_each_in_order_on_start(desk):
    h = desk.h
    await open_question(desk)
    h.clock.advance(61 * 60)  # both steps fell due while the bot was down
    await start_again(desk, policy=policy())
    await h.settle()
    thread = await desk.thread(1)  # posted while the bot started (the test's queue is reset then)
    posted = [m async for m in thread.history(limit=20, oldest_first=True)]
    assert [p.split(" ")[0] for p in escalations(posted)] == [f"<@&{LEADS}>", f"<@&{MANAGERS}>"]
    await start_again(desk, policy=policy())  # another start: nothing again
    await h.bot.deadlines.run_due()
    await h.settle()
    again = [m async for m in (await desk.thread(1)).history(limit=20, oldest_first=True)]
    assert len(escalations(again)) == 2


async def test_an_answer_stops_the_chain(desk):
    h = desk.h
    await open_question(desk)
    await desk.write(1, "Yes, it is dishwasher safe.")
    h.staff()
    h.clock.advance(2 * 3600)
    await h.bot.deadlines.run_due()
    await h.settle()
    assert escalations(h.staff()) == []
    assert await card_field(desk, 1, "Escalated") is None


def test_a_wrong_chain_is_refused_at_start_with_the_step_named():
    from core.policy import PolicyError, parse_policy

    for steps, says in [
        ([{"after_minutes": 0, "mention_role_id": 1}], "step 1: after_minutes"),
        ([{"after_minutes": 5, "mention_role_id": "leads"}], "step 1: mention_role_id"),
        ([{"after_minutes": 5, "role": 1}], "step 1 must be"),
        (
            [
                {"after_minutes": 30, "mention_role_id": 1},
                {"after_minutes": 10, "mention_role_id": 2},
            ],
            "step 2: after_minutes must be later",
        ),
    ]:
        rows = ", ".join(
            "{" + ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in s.items()) + "}"
            for s in steps
        )
        with pytest.raises(PolicyError) as caught:
            parse_policy(f"[desk]\nescalation = [{rows}]\n")
        assert says in str(caught.value), str(caught.value)


def test_approvers_per_action_are_read_from_the_file():
    from core.policy import PolicyError, parse_policy

    policy = parse_policy("[agents]\napprovers = { refund = 2, payout = 3 }\n")
    assert policy.agents.approvers == {"refund": 2, "payout": 3}
    with pytest.raises(PolicyError, match="refund = 9 must be a whole number from 1 to 5"):
        parse_policy("[agents]\napprovers = { refund = 9 }\n")
