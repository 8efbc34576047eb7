"""What conversations cost, with and without prompt caching, in one run on the same machine.

    python -m bench.cost [--customers 50] [--messages 20]

N customers each hold an M-message conversation with the bot (dpytest, the real anthropic client,
the scripted Messages API applying the documented caching rules): account and order look-ups (tool
rounds), an order that waits for the customer's typed yes (a confirmation), questions the example
shop's knowledge answers (passages given with the request), and small talk. Run twice: ``[llm]
prompt_caching = false``, then true. Prints the share of input tokens read from the cache (target
>= 80% with caching) and dollars per conversation at the default claude-sonnet-4 prices.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import discord.ext.test as dpytest
from discord.ext.test import backend

from bench._harness import ROOT, bench_bot
from core.costs import cost_figures
from core.policy import DEFAULT_PRICES
from storage.usage import UsageStore
from tests.fake_claude import FakeClaude, Reply, last_user_text, passages_in, text, tool_calls
from tests.support import test_policy

SAYINGS = [
    "hi, what plan am I on?",
    "can you list my orders?",
    "do you ship to Norway?",
    "thanks, and how long does delivery take?",
    "I'd like to order 2 mugs to 5 Elm Road, Springfield",
    "yes",
    "is the mug dishwasher safe?",
    "great, what is the status of order 1?",
    "how do I get tea stains out?",
    "ok thanks",
]


def scripted(request: dict[str, Any]) -> Reply:
    """A model that looks things up, orders, and answers from the passages it is given."""
    last = request["messages"][-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        return text("Done: here is what I found for you. Anything else I can help with?")
    said = last_user_text(request).lower()
    given = passages_in(request)
    if "plan" in said:
        return tool_calls(("get_account", {}))
    if "list my orders" in said:
        return tool_calls(("list_orders", {}))
    if "status of order" in said:
        return tool_calls(("get_order_status", {"order_id": 1}))
    if "order 2 mugs" in said:
        address = "5 Elm Road, Springfield"
        return tool_calls(("place_order", {"item": "mug", "quantity": 2, "address": address}))
    if given:
        number, body = given[0]
        return text(f"{body.splitlines()[0]} [K{number}]")
    return text("You're welcome! Let me know if there is anything else.")


async def run(customers: int, messages: int, caching: bool) -> dict[str, float]:
    fake = FakeClaude(default=scripted)
    url = await fake.start()
    policy = test_policy(llm={"prompt_caching": caching}, abuse={"messages_per_minute": 0})
    with tempfile.TemporaryDirectory() as tmp:
        knowledge = Path(tmp) / "knowledge"
        shutil.copytree(ROOT / "knowledge", knowledge)
        try:
            async with bench_bot(
                url, customers, concurrency=64, policy=policy, knowledge_dir=knowledge
            ) as bot:
                await bot.knowledge.reindex()
                people = [m for m in backend.get_state().guilds[0].members if m.id != bot.user.id]
                people = people[:customers]
                dms = {m.id: await m.create_dm() for m in people}
                for i in range(messages):
                    for member in people:
                        backend.make_message(SAYINGS[i % len(SAYINGS)], member, dms[member.id])
                    await dpytest.run_all_events()
                    await bot.engine.drain()
                rows = await UsageStore(bot.db).rows(0, 1e12)
                [[orders]] = await bot.db.fetchall(
                    "SELECT COUNT(*) FROM confirmations WHERE status = 'confirmed'"
                )
        finally:
            await fake.stop()
    prices = {"claude-test": DEFAULT_PRICES["claude-sonnet-4"]}
    figures = cost_figures(rows, prices)
    return {
        "calls": figures.calls,
        "share": figures.cache_share,
        "per_conversation": figures.per_conversation,
        "conversations": figures.conversations,
        "input": figures.input_tokens,
        "orders": orders,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    before = await run(args.customers, args.messages, caching=False)
    after = await run(args.customers, args.messages, caching=True)
    print(
        f"{args.customers} customers x {args.messages} messages, {after['calls']:.0f} Claude calls"
        f" ({after['orders']:.0f} orders placed after a typed yes), priced as claude-sonnet-4"
    )
    for name, run_ in (("without caching", before), ("with caching", after)):
        print(
            f"{name}: {run_['share']:.1%} of {run_['input']:,.0f} input tokens read from the"
            f" cache; ${run_['per_conversation']:.4f} per conversation"
            f" ({run_['conversations']:.0f} conversations)"
        )
    saved = 1 - after["per_conversation"] / before["per_conversation"]
    print(f"caching: {saved:.0%} cheaper per conversation")


if __name__ == "__main__":
    asyncio.run(main())
