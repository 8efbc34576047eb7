"""Blocking, the per-minute cap and the account-age floor: messages kept, Claude and the desk
spared."""

from __future__ import annotations

from tests.fake_claude import last_user_text, text
from tests.support import test_policy


def echo(request: dict) -> object:
    return text(f"Answer to: {last_user_text(request)}")


async def test_a_blocked_customer_is_told_once_and_never_reaches_claude_or_the_desk(desk):
    h = desk.h
    h.fake.default = echo
    await desk.slash("block", None, customer=h.members[0], reason="abusive language")
    [(said, ephemeral)] = await desk.told(1)
    assert ephemeral and "is blocked until someone runs `/unblock`" in said
    before = len(h.fake.requests)
    await h.dm(0, "you are useless")
    await h.dm(0, "talk to a human now")  # a hand-over phrase: no ticket either
    assert [m.content for m in h.sent()] == [h.bot.policy.message("blocked")]
    assert len(h.fake.requests) == before and await h.fetch("SELECT id FROM tickets") == []
    stored = await h.fetch("SELECT content, status FROM turns WHERE kind = 'customer'")
    assert [tuple(r) for r in stored] == [
        ("you are useless", "ignored"),
        ("talk to a human now", "ignored"),
    ]
    assert (await h.fetch("SELECT COUNT(*) FROM audit WHERE action = 'blocked'"))[0][0] == 1

    await desk.slash("unblock", None, customer=h.members[0])
    assert (await desk.told(2))[-1][0].endswith("is unblocked; their next DMs are answered again.")
    await h.dm(0, "sorry about that")
    assert [m.content for m in h.sent()] == ["Answer to: sorry about that"]


async def test_a_block_for_hours_ends_by_itself(desk):
    h = desk.h
    h.fake.default = echo
    await desk.slash("block", None, customer=h.members[0], reason="spam", hours=2.0)
    assert "is blocked for 2 hours" in (await desk.told(1))[0][0]
    await h.dm(0, "spam spam")
    assert [m.content for m in h.sent()] == [h.bot.policy.message("blocked")]
    h.clock.advance(2 * 3600 + 1)
    await h.dm(0, "a real question")
    assert [m.content for m in h.sent()] == ["Answer to: a real question"]


async def test_operators_cannot_be_blocked_and_others_cannot_block(desk):
    h = desk.h
    await desk.slash("block", None, customer=desk.operator, reason="testing")
    assert "is an operator or a bot and can't be blocked" in (await desk.told(1))[-1][0]
    await desk.slash(
        "block", None, member=desk.stranger, customer=h.members[0], reason="I don't like them"
    )
    assert (await desk.told(2))[-1][0].startswith("Only operators")
    assert await h.fetch("SELECT id FROM customers WHERE blocked_until IS NOT NULL") == []


async def test_more_than_the_cap_in_a_minute_is_kept_but_not_answered(harness):
    await harness.start(policy=test_policy(abuse={"messages_per_minute": 3}))
    harness.fake.default = echo
    for i in range(6):
        await harness.dm(0, f"message {i}", settle=False)
    await harness.settle()
    sent = [m.content for m in harness.sent()]
    assert sent.count(harness.bot.policy.message("slow_down")) == 1  # told once in the minute
    stored = await harness.fetch(
        "SELECT status, content FROM turns WHERE kind = 'customer' ORDER BY id"
    )
    # the first three stored are answered (sent together, they may be stored in any order)
    statuses = [r[0] for r in stored]
    assert statuses[3:] == ["ignored"] * 3 and "ignored" not in statuses[:3]
    asked = " ".join(str(r["messages"]) for r in harness.fake.requests)
    assert all(content not in asked for _, content in stored[3:])


async def test_accounts_younger_than_the_floor_are_told_once(harness):
    await harness.start(policy=test_policy(abuse={"min_account_age_days": 36500}))
    harness.fake.default = echo
    await harness.dm(0, "hello")
    await harness.dm(0, "hello again")
    assert [m.content for m in harness.sent()] == [harness.bot.policy.message("account_too_new")]
    assert harness.fake.requests == []


async def test_typing_the_code_placeholder_does_not_dodge_the_cap(harness):
    await harness.start(policy=test_policy(abuse={"messages_per_minute": 3}))
    harness.fake.default = echo
    for _ in range(8):
        await harness.dm(0, "[one-time code]", settle=False)
    await harness.settle()
    statuses = [
        r[0]
        for r in await harness.fetch("SELECT status FROM turns WHERE kind = 'customer' ORDER BY id")
    ]
    assert statuses[3:] == ["ignored"] * 5, "typed text is counted like any message"
    assert len(harness.fake.requests) <= 3
    assert [
        r[0] for r in await harness.fetch("SELECT one_time_code FROM turns WHERE kind = 'customer'")
    ] == [0] * 8
