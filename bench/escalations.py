"""N customers open tickets at once; operators answer them in random order.

    python -m bench.escalations [--customers 200] [--seed 1]

Each customer's question makes Claude call ask_human, so every customer has an open ticket
with its own thread. Then an operator answers each ticket in its thread, in a random order,
one at a time: half of the answers when the bot is idle, half the moment the previous DM
went out. Prints the share of answers that reached the right customer (must be 100%) and
the bot's own overhead from the operator's message arriving to the customer's DM being
sent (p50, p99; target p99 <= 10 ms). dpytest stands in for Discord, so Discord's own
latency is not in the figure; the time dpytest spends building the DM is (a few hundred
microseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import discord
import discord.ext.test as dpytest
from discord.ext.test import backend, callbacks

from bench._harness import bench_bot, peak_rss_mb, summary_ms
from tests.dpytest_ext import make_operator
from tests.fake_claude import FakeClaude, last_user_text, text, tool_calls


def ask_human_every_time(request: dict) -> object:
    last = request["messages"][-1]["content"]
    if any(b.get("type") == "tool_result" for b in last):
        return text("I've asked our team.")
    return tool_calls(("ask_human", {"question": f"Question {last_user_text(request)}"}))


async def run(customers: int, seed: int) -> dict[str, float]:
    fake = FakeClaude(default=ask_human_every_time)
    url = await fake.start()
    try:
        async with bench_bot(url, customers + 1, concurrency=min(customers, 64)) as bot:
            people = [m for m in backend.get_state().guilds[0].members if m.id != bot.user.id]
            operator = make_operator(bot, people[-1])
            members = people[:customers]
            # kept: discord.py caches only 128 DM channels
            dms = {m.id: await m.create_dm() for m in members}
            dm_channels = {channel.id: member_id for member_id, channel in dms.items()}
            token_of = {m.id: f"token-{m.id}" for m in members}

            started = time.perf_counter()
            for member in members:  # every customer asks at once
                backend.make_message(token_of[member.id], member, dms[member.id])
            await dpytest.run_all_events()  # the DMs reach the cog
            await bot.engine.drain()
            opened = time.perf_counter() - started
            rows = await bot.db.fetchall(
                "SELECT t.thread_id, c.discord_id FROM tickets t JOIN customers c ON c.id ="
                " t.customer_id"
            )
            assert len(rows) == customers, f"{len(rows)} tickets for {customers} customers"
            threads = {r["discord_id"]: bot.get_channel(r["thread_id"]) for r in rows}
            assert all(isinstance(t, discord.Thread) for t in threads.values())

            delivered: dict[str, tuple[int, float]] = {}
            waiting: dict[str, asyncio.Future[None]] = {}

            async def on_send(message: discord.Message) -> None:
                if message.guild is None and "answer for" in message.content:
                    key = message.content.rsplit("answer for ", 1)[1]
                    delivered[key] = (dm_channels.get(message.channel.id, 0), time.perf_counter())
                    if key in waiting and not waiting[key].done():
                        waiting[key].set_result(None)

            callbacks.set_callback(on_send, "send_message")
            order = list(members)
            random.Random(seed).shuffle(order)
            paced: list[float] = []
            back_to_back: list[float] = []
            loop = asyncio.get_running_loop()
            for number, member in enumerate(order):
                # Operators type seconds apart, so the bot is idle when the next answer comes
                # ("paced"). Every other answer is sent the moment the previous DM went out, while
                # the bot still updates the previous ticket's card ("back to back").
                rushed = number % 2 == 1
                if not rushed:
                    await bot.engine.drain()
                key = token_of[member.id]
                waiting[key] = loop.create_future()
                sent_at = time.perf_counter()
                backend.make_message(f"answer for {key}", operator, threads[member.id])
                await asyncio.wait_for(waiting[key], 10)
                (back_to_back if rushed else paced).append(delivered[key][1] - sent_at)
            await bot.engine.drain()
            right = sum(1 for m in members if delivered.get(token_of[m.id], (0,))[0] == m.id)
    finally:
        await fake.stop()
    share = right / customers * 100
    print(f"customers={customers}: {customers} tickets opened and posted in {opened:.2f} s")
    print(
        f"answers that reached the right customer: {right}/{customers} = {share:.1f}% (must be"
        " 100%)"
    )
    print("overhead, operator's message in the thread -> customer's DM sent (target p99 <= 10 ms):")
    print(f"  paced (bot idle when the answer comes): {summary_ms(paced)}")
    print(f"  back to back (previous answer's work still running): {summary_ms(back_to_back)}")
    print(f"peak RSS {peak_rss_mb():.1f} MB")
    return {"share": share}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.customers, args.seed))


if __name__ == "__main__":
    main()
