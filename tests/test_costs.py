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
