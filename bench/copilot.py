"""What the copilot adds per ticket: Discord requests, Claude calls, and the drafts' size.

    python -m bench.copilot [--tickets 200] [--latency 0.2]

N customers each ask a question the assistant sends to our team (one question ticket each),
through the real bot (dpytest, the real anthropic client against the scripted Messages API),
once with ``[copilot] enabled = false`` (an operator answers each ticket in its thread) and once
with it on (the operator sends each draft with its Send button). Prints, per ticket, the Discord
requests and Claude calls the copilot added (targets: one Claude call and at most two Discord
requests: the draft's post, and its edit once used) and the size of the drafts' requests, which
is what they cost.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import discord.ext.test as dpytest
from discord.ext.test import backend

from bench._harness import bench_bot
from core.desk import Operator
from tests import dpytest_ext
from tests.desk_support import ask_then_wait
from tests.dpytest_ext import make_operator
from tests.fake_claude import FakeClaude, Reply, system_text, text
from tests.support import test_policy

COUNTED = ("send_message", "edit_message", "start_thread_with_message", "send_typing")
DRAFT = "Yes: we ship there in 6-9 working days; shipping costs 12 EUR, free over 60 EUR."


def _count_requests() -> None:
    """Count every REST call the staff desk makes (dpytest_ext counts some already)."""
    for name in ("edit_message", "start_thread_with_message"):
        original = getattr(backend.FakeHttp, name)
        if getattr(original, "__name__", "") != name or not hasattr(original, "_bench"):
            wrapped = dpytest_ext._counted(name, original)
            wrapped._bench = True  # type: ignore[attr-defined]
            setattr(backend.FakeHttp, name, wrapped)


def model(request: dict[str, Any]) -> Reply:
    if system_text(request).startswith("You draft an answer"):
        return text(DRAFT)
    return ask_then_wait(request)


async def run(tickets: int, latency: float, copilot: bool) -> dict[str, float]:
    fake = FakeClaude(default=model, latency=latency)
    url = await fake.start()
    policy = test_policy(copilot={"enabled": copilot})
    try:
        async with bench_bot(url, tickets + 1, concurrency=64, policy=policy) as bot:
            _count_requests()
            people = [m for m in backend.get_state().guilds[0].members if m.id != bot.user.id]
            operator = make_operator(bot, people[-1])
            dpytest_ext.requests_made.clear()
            started = time.perf_counter()
            for member in people[:tickets]:
                backend.make_message(
                    f"do you ship to country {member.id}?", member, await member.create_dm()
                )
            await dpytest.run_all_events()  # the DMs reach the cog
            await bot.engine.drain()
            if bot.copilot is not None:
                await bot.copilot.drain()
            await _desk_idle(bot)
            opened = time.perf_counter() - started
            drafts = await bot.db.fetchall("SELECT id, message_id FROM drafts ORDER BY id")
            who = Operator(operator.id, operator.display_name)
            if copilot:
                for draft_id, _ in drafts:  # what the Send button calls
                    reply = await bot.desk.send_draft(draft_id, who)
                    assert reply.ok, reply.text
            else:  # the same answers, written in each ticket's thread by hand
                for (thread_id,) in await bot.db.fetchall("SELECT thread_id FROM tickets"):
                    await bot.desk.operator_message(thread_id, who, DRAFT)
            await bot.engine.drain()
            await _desk_idle(bot)
            requests = sum(dpytest_ext.requests_made[n] for n in COUNTED)
            drafted = [r for r in fake.requests if system_text(r).startswith("You draft an answer")]
            [[count]] = await bot.db.fetchall("SELECT COUNT(*) FROM tickets")
    finally:
        await fake.stop()
    answers = sum(1 for r in fake.requests if not system_text(r).startswith("You draft an answer"))
    return {
        "tickets": count,
        "requests": requests,
        "drafts": len(drafted),
        "posted": sum(1 for _, message_id in drafts if message_id),
        "assistant_calls": answers,
        "input_chars": sum(len(r["messages"][0]["content"]) + len(r["system"]) for r in drafted),
        "seconds": opened,
    }


async def _desk_idle(bot: Any) -> None:
    for _ in range(2000):
        [[pending]] = await bot.db.fetchall(
            "SELECT COUNT(*) FROM desk_outbox WHERE status = 'pending'"
        )
        if not pending:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the staff desk never caught up")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    off = await run(args.tickets, args.latency, copilot=False)
    on = await run(args.tickets, args.latency, copilot=True)
    n = on["tickets"]
    print(f"{n} question tickets (copilot off: {off['tickets']}), Claude latency {args.latency} s")
    print(
        f"Claude calls per ticket added by the copilot: {on['drafts'] / n:.2f}"
        f" (assistant's own: {on['assistant_calls'] / n:.2f} with, {off['assistant_calls'] / n:.2f}"
        " without; target 1)"
    )
    added = (on["requests"] - off["requests"]) / n
    print(
        f"Discord requests per ticket added by the copilot: {added:.2f}"
        f" ({on['requests']} with, {off['requests']} without, drafts posted {on['posted']}/{n},"
        " each then sent: post + edit; target <= 2)"
    )
    chars = on["input_chars"] / max(1, on["drafts"])
    print(
        f"a draft's request: {chars:.0f} characters in (about {chars / 4:.0f} tokens at 4 per"
        f" token), {len(DRAFT)} out; ticket to draft posted for all {n}: {on['seconds']:.1f} s"
        f" (without the copilot, cards only: {off['seconds']:.1f} s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
