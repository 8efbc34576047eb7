"""Takeover time: two real ``python bot.py`` on one PostgreSQL database; the leader is killed
(SIGKILL) again and again, the standby takes over, the killed one comes back as the next standby.

    python -m bench.failover [--kills 20] [--takeover 10] [--db postgresql://...] [--customers 50]
    [--messages 20]

Each round a customer writes just before the kill (the leader is answering it: Claude takes 0.5 s)
and once more while no process is connected (only Discord has it: the new leader's catch-up finds
it). Prints the time from the kill to the new leader's gateway session (p50/p99/max), the time from
the kill until both messages are answered, and how many messages were lost or answered twice. The
Discord and Claude stand-ins run in this process; the database is a fresh schema on the server
(HANDOFF_TEST_POSTGRES_URL, or 127.0.0.1:5432). Then it prints messages per second through the
store, SQLite against PostgreSQL (``--kills 0``: only that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench._harness import ROOT, percentile
from storage import AnyDatabase, Database, PostgresDatabase
from storage.conversations import ConversationStore, NewTurn, OutboxStore
from tests.fake_claude import FakeClaude, Reply, text
from tests.fake_discord import FakeDiscord
from tests.postgres_url import CANDIDATES, usable
from tests.support import postgres_schema
from tests.test_real_bot_process import CUSTOMER, RealBot, bot_env


def answer_every_message(request: dict) -> Reply:
    """Each message of the batch quoted (two messages may be answered together)."""
    content = request["messages"][-1]["content"]
    texts = (
        [content]
        if isinstance(content, str)
        else [b["text"] for b in content if b.get("type") == "text"]
    )
    return text(" | ".join(f"You said: {t}" for t in texts))


async def until(predicate, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def run(kills: int, takeover: float, base_url: str, seed: int = 1) -> None:
    rng = random.Random(seed)
    discord = await FakeDiscord().start()
    claude = FakeClaude(latency=0.5, default=answer_every_message)
    await claude.start()
    takeovers: list[float] = []
    answered: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # One customer writes twice a round, faster than the default cap of 10 a minute: no cap
        # here.
        policy = (
            (ROOT / "policy.toml")
            .read_text()
            .replace("messages_per_minute = 10", "messages_per_minute = 0")
        )
        policy = policy.replace("takeover_seconds = 10", f"takeover_seconds = {takeover:g}")
        (work / "policy.toml").write_text(policy)
        async with postgres_schema(base_url) as url:
            env = bot_env(
                discord,
                work,
                HANDOFF_DB=url,
                HANDOFF_POLICY=str(work / "policy.toml"),
                ANTHROPIC_API_KEY="k",
                ANTHROPIC_BASE_URL=claude.url,
                HANDOFF_LOG_LEVEL="INFO",
            )
            bots = [RealBot(discord, env, work / f"{name}.log") for name in ("a", "b")]
            try:
                await bots[0].spawn()
                await asyncio.wait_for(discord.identified.wait(), 30)
                await until(lambda: bots[0].said("ready to work"), 30, "the first leader")
                await bots[1].spawn()
                await until(lambda: bots[1].said("standing by"), 30, "the first standby")
                leader, standby = bots
                sent: list[str] = []

                def times_answered(message: str) -> int:
                    return sum(
                        f"You said: {message}" in m["content"]
                        for m in discord.messages.get(CUSTOMER + 1, [])
                    )

                for round_ in range(1, kills + 1):
                    before, during = (
                        f"round {round_}: before the kill",
                        f"round {round_}: while down",
                    )
                    asked = len(claude.requests)
                    await discord.customer_writes(CUSTOMER, before)
                    sent.append(before)
                    await until(
                        lambda asked=asked: len(claude.requests) > asked, 5, "Claude being asked"
                    )
                    # The leader is answering it; the kill lands anywhere in the lease's renewal
                    # cycle.
                    await asyncio.sleep(0.2 + rng.uniform(0, takeover / 6))
                    discord.identified.clear()
                    killed = time.monotonic()
                    await leader.kill()
                    # nobody connected: only Discord has it
                    await discord.customer_writes(CUSTOMER, during)
                    sent.append(during)
                    await asyncio.wait_for(discord.identified.wait(), takeover + 30)
                    takeovers.append(time.monotonic() - killed)
                    await until(
                        lambda pair=(before, during): all(times_answered(m) for m in pair),
                        60,
                        f"round {round_}'s answers",
                    )
                    answered.append(time.monotonic() - killed)
                    await leader.spawn()  # back as the next standby
                    await until(lambda bot=leader: bot.said("standing by"), 30, "the new standby")
                    leader, standby = standby, leader
                    print(
                        f"round {round_:2d}: takeover {takeovers[-1]:.2f} s, both answered"
                        f" {answered[-1]:.2f} s",
                        flush=True,
                    )
                await asyncio.sleep(2)
                lost = sum(1 for m in sent if not times_answered(m))
                doubled = sum(max(0, times_answered(m) - 1) for m in sent)
            finally:
                for bot in bots:
                    await bot.kill()
    await claude.stop()
    await discord.stop()
    print(f"\n{kills} kills (SIGKILL of the leader), [ha] takeover_seconds = {takeover:g}:")
    print(
        f"  takeover (kill -> new leader's gateway session): p50 {statistics.median(takeovers):.2f}"
        f" s, p99 {percentile(takeovers, 99):.2f} s, max {max(takeovers):.2f} s"
    )
    print(
        "  kill -> both messages answered (one in flight, one sent while down): p50"
        f" {statistics.median(answered):.2f} s, p99 {percentile(answered, 99):.2f} s"
    )
    print(f"  messages: {len(sent)} sent, {lost} lost, {doubled} answered twice")


async def store_throughput(db: AnyDatabase, customers: int, messages: int) -> float:
    """Messages per second through the repositories alone: each message stored, read back with its
    history, answered (the reply owed in the same change) and the reply marked sent - what the bot
    asks of the store per message - for ``customers`` customers at once."""
    conversations, outbox = ConversationStore(db), OutboxStore(db)

    async def customer(number: int) -> None:
        for i in range(messages):
            now = 1_800_000_000.0 + i
            got = await conversations.record_inbound(
                discord_id=700000000000000000 + number,
                display_name="bench",
                content=f"message {i}",
                data=None,
                discord_message_id=(number * 10_000 + i + 1) << 22,
                now=now,
                idle_seconds=3600,
            )
            work = await conversations.pending_turns(got.customer.id, history_limit=40)
            await conversations.complete_answer(work.turns, NewTurn("assistant", "ok"), ["ok"], now)
            item = await outbox.next_pending(got.customer.id)
            assert item is not None
            await outbox.mark_sent(item.id, None, now)

    started = time.perf_counter()
    await asyncio.gather(*(customer(n) for n in range(customers)))
    return customers * messages / (time.perf_counter() - started)


async def throughput(base_url: str, customers: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Database(Path(tmp) / "bench.db") as lite:
            sqlite = await store_throughput(lite, customers, messages)
    async with postgres_schema(base_url) as url, PostgresDatabase(url) as pg:
        postgres = await store_throughput(pg, customers, messages)
    print(
        f"\nmessages per second through the store ({customers} customers x {messages} messages,"
        " each stored, read back, answered, its reply marked sent):"
    )
    print(
        f"  SQLite {sqlite:.0f}/s, PostgreSQL {postgres:.0f}/s ({postgres / sqlite:.0%} of SQLite)"
    )


async def server_url(given: str | None) -> str:
    for url in (
        [given] if given else [os.environ.get("HANDOFF_TEST_POSTGRES_URL") or "", *CANDIDATES]
    ):
        if url and await usable(url):
            return url
    raise SystemExit("no PostgreSQL server answers (give --db postgresql://...)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--takeover", type=float, default=10)
    parser.add_argument(
        "--seed", type=int, default=1, help="where in the renewal cycle each kill lands"
    )
    parser.add_argument("--db", help="a PostgreSQL server URL (a fresh schema is made in it)")
    parser.add_argument(
        "--customers", type=int, default=50, help="for the store's messages per second"
    )
    parser.add_argument(
        "--messages", type=int, default=20, help="for the store's messages per second"
    )
    args = parser.parse_args()

    async def go() -> None:
        url = await server_url(args.db)
        if args.kills:
            await run(args.kills, args.takeover, url, args.seed)
        await throughput(url, args.customers, args.messages)

    asyncio.run(go())


if __name__ == "__main__":
    main()
