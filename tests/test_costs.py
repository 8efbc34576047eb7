"""What the assistant costs: the prompt's cache actually read (the scripted API applies the
documented caching rules), through the real bot and the real anthropic client."""

from __future__ import annotations

import itertools
from typing import Any

from core.assistant import window
from storage.conversations import Turn
from tests.fake_claude import PromptCache, text
from tests.support import test_policy


def _plain(messages: list[dict[str, Any]]) -> list[Any]:
    return [
        (m["role"], [{k: v for k, v in b.items() if k != "cache_control"} for b in m["content"]])
        for m in messages
    ]


async def test_a_30_turn_conversation_keeps_its_prefix_and_reads_it_from_the_cache(harness):
    policy = test_policy(llm={"history_tokens": 3000}, abuse={"messages_per_minute": 0})
    await harness.start(policy=policy)
    harness.fake.default = lambda request: text("Noted. " + "Here is what I found. " * 8)
    for i in range(30):
        await harness.dm(0, f"message {i}: " + "a question about my order " * 8)
    requests, usages = harness.fake.requests, harness.fake.usages
    assert len(requests) == len(usages) == 30, (len(requests), len(usages), harness.fake.statuses)
    changed = [
        i
        for i, (before, after) in enumerate(itertools.pairwise(requests), 1)
        if _plain(after["messages"])[: len(before["messages"])] != _plain(before["messages"])
    ]
    # byte-identical from one call to the next, except where the window stepped (a quarter of
    # the 3,000-token budget at a time), not one turn per call
    assert 1 <= len(changed) <= 3, changed
    read = sum(u["cache_read_input_tokens"] for u in usages)
    written = sum(u["cache_creation_input_tokens"] for u in usages)
    fresh = sum(u["input_tokens"] for u in usages)
    assert read / (read + written + fresh) >= 0.8
    for i in changed:  # even at a step, the tools and the system prompt are read
        assert usages[i]["cache_read_input_tokens"] > 1024
    marks = [b for m in requests[-1]["messages"] for b in m["content"] if "cache_control" in b]
    assert len(marks) + 1 <= 4, "at most four breakpoints with the system prompt's"


def _turn(i: int, kind: str, size: int) -> Turn:
    return Turn(i, 1, 1, kind, "x" * size, None, "done", 0, 0.0)


def test_the_window_moves_in_quarters_of_the_budget():
    turns = [_turn(i, "customer" if i % 2 else "assistant", 392) for i in range(1, 61)]
    starts = set()
    for n in range(2, 61):
        kept = window(turns[:n], token_budget=2000)
        starts.add(kept[0].id)
        assert sum(len(t.content) // 4 + 8 for t in kept) <= 2000
        assert kept[0].kind == "customer"
    # 60 turns of 106 tokens: 6,360 tokens through a 2,000 budget moved in 500-token steps
    assert len(starts) <= 10, sorted(starts)


def test_the_scripted_cache_follows_the_documented_rules():
    cache = PromptCache(minimum=10)
    big = {"type": "text", "text": "s" * 400}
    first = {"system": [{**big, "cache_control": {"type": "ephemeral"}}], "messages": []}
    assert cache.usage(first)["cache_creation_input_tokens"] > 0
    assert cache.usage(first)["cache_read_input_tokens"] > 0
    five = {"system": [{**big, "cache_control": {"type": "ephemeral"}}] * 5, "messages": []}
    assert "maximum of 4 blocks" in cache.usage(five)
    short = {"system": [{"type": "text", "text": "s", "cache_control": {}}], "messages": []}
    assert cache.usage(short)["cache_creation_input_tokens"] == 0, "below the minimum length"


async def test_each_calls_usage_is_stored_and_priced_per_conversation(harness):
    from core.costs import cost_figures, price_of
    from storage.usage import UsageStore
    from tests.fake_claude import tool_calls

    await harness.start(policy=test_policy(abuse={"messages_per_minute": 0}))
    harness.fake.then(
        tool_calls(("get_account", {})), text("You are on the Basic plan."), text("Bye!")
    )
    await harness.dm(0, "what plan am I on?")
    await harness.dm(1, "hello")
    rows = await harness.fetch(
        "SELECT purpose, model, customer_id, conversation_id, input_tokens, cache_write_tokens,"
        " cache_read_tokens, output_tokens FROM llm_usage ORDER BY id"
    )
    assert len(rows) == 3, "one row per Claude call, tool rounds included"
    assert {r[0] for r in rows} == {"assistant"} and {r[1] for r in rows} == {"claude-test"}
    assert [r[3] for r in rows] == [rows[0][3], rows[0][3], rows[2][3]] and rows[0][3] != rows[2][3]
    assert all(r[4] + r[5] + r[6] > 0 and r[7] > 0 for r in rows)
    figures = cost_figures(
        await UsageStore(harness.db).rows(0, harness.clock.now() + 1),
        {"claude-test": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3}},
    )
    assert figures.calls == 3 and figures.conversations == 2 and figures.dollars > 0
    assert figures.without_person == 2
    expected = sum((r[4] * 3.0 + r[5] * 3.75 + r[6] * 0.3 + r[7] * 15.0) / 1_000_000 for r in rows)
    assert abs(figures.dollars - expected) < 1e-12
    assert price_of(
        {"claude-sonnet-4": {}, "claude-sonnet-4-5": {"x": 1}}, "claude-sonnet-4-5-2025"
    )


async def test_the_daily_budget_sends_the_customer_to_a_person_exactly_when_crossed(harness):
    policy = test_policy(abuse={"messages_per_minute": 0, "tokens_per_day": 4000})
    await harness.start(policy=policy)
    harness.fake.default = lambda request: text("Sure.")
    await harness.dm(0, "first")
    [[used]] = await harness.fetch(
        "SELECT SUM(input_tokens + cache_write_tokens + cache_read_tokens + output_tokens)"
        " FROM llm_usage"
    )
    assert used < 4000, "the first answer stays under the budget"
    await harness.dm(0, "second")  # answered: the check is made before the call
    [[used]] = await harness.fetch(
        "SELECT SUM(input_tokens + cache_write_tokens + cache_read_tokens + output_tokens)"
        " FROM llm_usage"
    )
    assert used >= 4000, "the second answer crossed it"
    assert [m.content for m in harness.sent()] == ["Sure.", "Sure."]
    calls = len(harness.fake.requests)
    await harness.dm(0, "third")
    await harness.dm(0, "fourth")
    assert len(harness.fake.requests) == calls, "past the budget, Claude is not called"
    told = [m.content for m in harness.sent()]
    assert told == [
        "A person from our team will follow up on your messages here (ticket #1); they are all"
        " kept."
    ], "told once"
    [ticket] = await harness.fetch("SELECT source, question FROM tickets")
    assert tuple(ticket) == ("budget", "third")
    await harness.dm(1, "another customer")
    assert [m.content for m in harness.sent()] == ["Sure."], "one customer's budget only"
    harness.clock.advance(86400)  # a new day
    await harness.dm(0, "next day")
    assert [m.content for m in harness.sent()] == ["Sure."]


async def test_the_pace_grows_with_room_halves_on_a_limit_and_serves_customers_first():
    import asyncio

    from core.claude_pace import BACKGROUND, CUSTOMER, ClaudePace

    pace = ClaudePace(maximum=64, start=4)
    room = {"anthropic-ratelimit-requests-remaining": "3000"}
    for _ in range(20):
        pace.observe(room)
    assert pace.limit == 64, "grows while there is room, never above the maximum"
    pace.observe(None, limited=True)
    assert pace.limit == 32 and pace.shrunk == 1, "a 429 halves it"
    pace.observe({"anthropic-ratelimit-requests-remaining": "5"})
    assert pace.limit == 5, "never more at once than the key has left"
    pace.observe({"anthropic-ratelimit-input-tokens-remaining": "8000"})
    assert pace.limit == 2, "nor than its tokens allow"

    small = ClaudePace(maximum=1, start=1)
    order: list[str] = []
    release = asyncio.Event()

    async def call(name: str, priority: int) -> None:
        async with small.slot(priority):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(call("first", CUSTOMER))
    await asyncio.sleep(0)
    draft = asyncio.create_task(call("draft", BACKGROUND))
    await asyncio.sleep(0)
    answer = asyncio.create_task(call("answer", CUSTOMER))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, draft, answer)
    assert order == ["first", "answer", "draft"], "a customer's answer goes before a draft"


async def test_a_429_through_the_real_client_shrinks_the_pace_and_room_grows_it(harness):
    from tests.fake_claude import error

    await harness.start(policy=test_policy(abuse={"messages_per_minute": 0}))
    pace = harness.bot.assistant.pace
    start = pace.limit
    harness.fake.then(error(429), text("after a retry"))
    await harness.dm(0, "hello")
    assert [m.content for m in harness.sent()] == ["after a retry"]
    assert pace.shrunk == 1 and pace.limit == max(1, start // 2)
    for i in range(4):
        await harness.dm(0, f"more {i}")
    assert pace.limit > max(1, start // 2), "the headers announce room: it grows back"
