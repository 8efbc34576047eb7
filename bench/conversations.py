"""N customers x M messages through the real cog and the real anthropic client, Claude latency L.

    python -m bench.conversations [--customers 200] [--messages 5] [--latency 0.2] [--postgres URL]

Each customer sends its next message when the previous answer arrives, all customers at
once. Prints wall time / ideal (M x L), the bot's own overhead per message (time from the
DM being dispatched to the answer being sent, minus L), and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import cProfile
import pstats
import time

from discord.ext.test import backend, callbacks

from bench._harness import bench_bot, claude_server, peak_rss_mb, summary_ms

# Time spent inside the anthropic client (request building, HTTP, waiting for Claude, parsing), per
# message. Set in each customer's task; the DM dispatch and the answering worker inherit the
# context.
claude_seconds: contextvars.ContextVar[list[float]] = contextvars.ContextVar("claude_seconds")


def time_claude_calls(agent) -> None:
    original = agent._create

    async def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            claude_seconds.get()[0] += time.perf_counter() - started

    agent._create = timed


async def run(
    customers: int, messages: int, latency: float, profile: int = 0, postgres: str | None = None
) -> dict[str, float]:
    async with (
        claude_server(latency) as url,
        bench_bot(url, customers, concurrency=customers, postgres=postgres) as bot,
    ):
        members = [m for m in backend.get_state().guilds[0].members if m.id != bot.user.id][
            :customers
        ]
        channels = {m.id: await m.create_dm() for m in members}
        waiting: dict[int, asyncio.Future[float]] = {}

        async def on_send(message) -> None:
            future = waiting.pop(message.channel.id, None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

        callbacks.set_callback(on_send, "send_message")
        time_claude_calls(bot.assistant)
        overheads: list[float] = []
        own: list[float] = []
        loop = asyncio.get_running_loop()

        async def customer(member) -> None:
            channel = channels[member.id]
            for i in range(messages):
                future = loop.create_future()
                waiting[channel.id] = future
                box = [0.0]
                claude_seconds.set(box)
                sent_at = time.perf_counter()
                backend.make_message(f"message {i} from {member.name}", member, channel)
                answered_at = await future
                overheads.append(answered_at - sent_at - latency)
                own.append(answered_at - sent_at - box[0])

        # One warm-up conversation so imports and first-connection costs are not measured.
        await customer(members[0])
        overheads.clear()
        own.clear()
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(customer(m) for m in members))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
        await bot.engine.drain()
    ideal = messages * latency
    print(
        f"customers={customers} messages={messages} latency={latency * 1000:.0f} ms, store:"
        f" {bot.db}"
    )
    print(f"wall {wall:.3f} s, ideal {ideal:.3f} s, ratio {wall / ideal:.3f} (target <= 1.10)")
    print(f"overhead per message, end to end minus L: {summary_ms(overheads)} (target p99 <= 5 ms)")
    print(f"  of which outside the anthropic client call: {summary_ms(own)}")
    print(f"throughput: {customers * messages / wall:.0f} messages per second answered")
    per_message = cpu / (customers * messages) * 1000
    print(f"CPU of the bot's process during the run: {cpu:.3f} s, {per_message:.2f} ms per message")
    print(f"peak RSS {peak_rss_mb():.1f} MB (target <= 150 MB)")
    return {"ratio": wall / ideal, "rss": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="store in a fresh schema on this PostgreSQL server instead of a SQLite file",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="ROWS",
        help="profile the timed run (cProfile, slows it down) and print the top ROWS functions",
    )
    args = parser.parse_args()
    asyncio.run(run(args.customers, args.messages, args.latency, args.profile, args.postgres))


if __name__ == "__main__":
    main()
