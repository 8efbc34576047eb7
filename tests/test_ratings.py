"""Satisfaction: 1-5 buttons after a ticket closes, once, an optional comment, CSAT in /stats."""

from __future__ import annotations

from tests.conftest import eventually
from tests.desk_support import open_question
from tests.dpytest_ext import stored_components


async def closed_ticket_rating_prompt(desk):
    h = desk.h
    await open_question(desk)
    await desk.slash("close", 1, reason="answered by phone")
    await desk.told(1)
    await eventually(lambda: h.bot.outbox.busy is False, what="the DMs")
    await h.settle()
    prompt = [m for m in h.sent() if "How did we do on ticket #1?" in m.content]
    assert len(prompt) == 1
    return prompt[0]


async def test_a_rating_counts_once_and_a_comment_can_follow(desk):
    h = desk.h
    prompt = await closed_ticket_rating_prompt(desk)
    ids = [c["custom_id"] for row in stored_components(prompt) for c in row["components"]]
    assert ids == [f"rate:{n}:t1" for n in range(1, 6)]
    # not their ticket
    desk.i.click("rate:2:t1", member=h.members[1], channel=prompt.channel, message=prompt)
    assert (await desk.told(2))[-1][0] == "Only the customer who was helped can rate this."
    desk.i.click("rate:2:t1", member=h.members[0], channel=prompt.channel, message=prompt)
    # the prompt, edited: a comment button
    assert (await desk.told(3))[-1][0] == "Thank you for rating us 2/5!"
    # a second click
    desk.i.click("rate:5:t1", member=h.members[0], channel=prompt.channel, message=prompt)
    assert (await desk.told(4))[-1][0] == "You rated this already; thank you!"
    desk.i.submit_modal(
        "rate:comment-form:t1",
        {"comment": "Took two days to hear back."},
        member=h.members[0],
        channel=prompt.channel,
    )
    assert (await desk.told(5))[-1][0] == "Thank you, we read every comment."
    rows = await h.fetch("SELECT subject, score, by_person, comment FROM ratings")
    assert [tuple(r) for r in rows] == [("t1", 2, 1, "Took two days to hear back.")]

    await desk.slash("stats", None, days=1)
    await eventually(lambda: any(r.get("followup") for r in desk.i.responses), what="the summary")
    [summary] = [r["data"]["content"] for r in desk.i.responses if r.get("followup")]
    assert (
        "Satisfaction (CSAT, ratings of 4-5): 0% of 1 · handled by a person 0% of 1 · AI only —"
        in summary
    )
    assert "> 2/5: Took two days to hear back." in summary


async def test_no_rating_is_asked_when_feedback_is_off(harness):
    from tests.desk_support import desk_with
    from tests.support import test_policy

    async with desk_with(harness, test_policy(feedback={"ask_after_close": False})) as desk:
        await open_question(desk)
        await desk.slash("close", 1, reason="done")
        await desk.told(1)
        await harness.settle()
        assert not any("How did we do" in m.content for m in harness.sent())


async def test_an_ai_only_conversation_asks_for_a_rating_when_it_ends_if_wished(harness):
    from tests.fake_claude import text
    from tests.support import test_policy

    await harness.start(policy=test_policy(feedback={"ask_after_ai": True}))
    harness.fake.then(text("Your parcel arrives tomorrow."))
    await harness.dm(0, "where is my parcel?")
    harness.sent()
    harness.clock.advance(harness.bot.policy["conversation"]["idle_minutes"] * 60 + 1)
    await harness.bot.deadlines.run_due()
    await harness.bot.deadlines.run_due()  # once
    await harness.settle()
    [prompt] = harness.sent()
    assert prompt.content == harness.bot.policy.message("rate_ai")
    [(conversation,)] = await harness.fetch("SELECT id FROM conversations")
    ids = [c["custom_id"] for row in stored_components(prompt) for c in row["components"]]
    assert ids == [f"rate:{n}:c{conversation}" for n in range(1, 6)]
