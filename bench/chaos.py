"""Kill the real bot at random under load and count what was lost, doubled or run without approval.

    python -m bench.chaos [--seconds 120] [--customers 30] [--seed 1] [--life 4 12] [--postgres URL]

Runs ``python bot.py`` as a child process against local stand-ins: Discord's REST API and gateway
(``rehearsal/discord_stand_in.py``: 50 requests/s global, 5 messages per 5 s per channel,
Discord's 429s) and the Messages API (``rehearsal/scripted_claude.py``: 0.3-1 s per answer, 3%
answered 529). Customers
write at random (questions, orders they confirm by typing yes, refunds an operator approves with
the card's button); the bot is SIGKILLed after a random life and started again on the same
database. Then the run settles and the bench prints:

- messages: sent by customers, received by the bot (stored), answered, lost, answered twice;
- actions: run, run twice, run without the customer's yes or the operator's approval;
- the longest time the bot was up with sends owed and none completing (and with restarts);
- requests to Discord and the 429s among them.

Each customer message carries a tag (``m17``); the scripted model repeats the tags it answers, and
actions carry the tag of the request, so every answer and every run is tied to its message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import AnyDatabase, database_for  # noqa: E402
from tests.fake_claude import FakeClaude, Reply, error, text, tool_calls  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402
from tests.support import postgres_schema  # noqa: E402

CUSTOMER_BASE = 600000000000000000
TAG = re.compile(r"\bm\d+\b")
ANSWERS = ("Answer to ", "Noted: ")  # how the scripted model's answers begin
POLICY = """
[abuse]
# The bench's customers write every 2-6 s, faster than the default cap of 10 a minute: it measures
# losses, not the cap (tests/test_moderation.py covers that).
messages_per_minute = 60
[mfa]
enabled = false
[delivery]
retry_base_seconds = 0.5
retry_max_seconds = 5
[llm]
retry_after_failure_seconds = 2
max_answer_attempts = 5
"""


def scripted_claude(rng: random.Random, failure_rate: float) -> Any:
    """Repeats the tags of the messages it answers; orders and refunds become tool calls."""

    def answer(request: dict[str, Any]) -> Reply:
        delay = rng.uniform(0.3, 1.0)
        if rng.random() < failure_rate:
            reply = error(529)
            reply.delay = delay
            return reply
        messages = request["messages"]
        last = messages[-1]["content"]
        after_tools = any(b.get("type") == "tool_result" for b in last)
        # Everything the customer wrote since the last answer (an assistant message without tool
        # calls), as a model answers what is unanswered; system notes and operators' lines start
        # with [.
        customer: list[str] = []
        for m in reversed(messages):
            if m["role"] == "assistant" and not any(
                b.get("type") == "tool_use" for b in m["content"]
            ):
                break
            if m["role"] == "user":
                customer[:0] = [
                    b["text"]
                    for b in m["content"]
                    if b.get("type") == "text" and not b["text"].startswith("[")
                ]
        tags = sorted(set(TAG.findall(" ".join(customer))), key=lambda t: int(t[1:]))
        said = " ".join(customer).casefold()
        if after_tools or not tags:
            return text(f"Noted: {' '.join(tags) or '(nothing new)'}.", delay=delay)
        if "refund" in said:
            return tool_calls(("issue_refund", {"tag": tags[-1]}), delay=delay)
        if "order" in said:
            return tool_calls(("place_order", {"tag": tags[-1]}), delay=delay)
        return text(f"Answer to {' '.join(tags)}.", delay=delay)

    return answer


class BotProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, discord: FakeDiscord, *, cwd: Path = ROOT) -> None:
        discord.identified.clear()
        out = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "bot.py", cwd=cwd, env=self.env, stdout=out, stderr=out
        )
        out.close()
        await asyncio.wait_for(discord.identified.wait(), 30)
        self.starts += 1

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


@dataclass
class Run:
    sent: dict[str, int] = field(default_factory=dict)  # tag -> Discord message id
    delivered: set[str] = field(default_factory=set)  # tags a running bot got from the gateway
    yes_sent: int = 0
    clicks: int = 0
    kills: int = 0
    up_since: float | None = None
    stall_up: float = 0.0  # longest: bot up, sends owed, none completing
    stall_any: float = 0.0  # the same, restarts included


async def owed(db: AnyDatabase) -> int:
    try:
        [[count]] = await db.fetchall(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending') +"
            " (SELECT COUNT(*) FROM desk_outbox WHERE status = 'pending')"
        )
        return count
    except Exception:  # a busy file, a dropped connection: ask again at the next look
        return 0


async def customers(
    discord: FakeDiscord, rng: random.Random, run: Run, count: int, until: float, bot: BotProcess
) -> None:
    numbers = iter(range(1, 10**9))

    async def customer(i: int) -> None:
        user = CUSTOMER_BASE + i
        while time.monotonic() < until:
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            # customers write whether or not a bot is connected (catch-up reads it later)
            roll = rng.random()
            tag = f"m{next(numbers)}"
            words = (
                "I'd like to order a mug"
                if roll < 0.25
                else "please refund my order"
                if roll < 0.4
                else "where is my parcel"
            )
            message_id, delivered = await discord.customer_writes(user, f"{words} ({tag})")
            run.sent[tag] = message_id
            if delivered:
                run.delivered.add(tag)

    await asyncio.gather(*(customer(i) for i in range(count)))


async def answer_prompts(discord: FakeDiscord, rng: random.Random, run: Run, until: float) -> None:
    """Customers type yes to each confirmation prompt they get; the operator approves each open
    card."""
    seen_prompts: set[str] = set()
    clicked: dict[str, float] = {}
    while time.monotonic() < until:
        await asyncio.sleep(0.5)
        if not discord.connected:
            continue
        for channel_id, messages in list(discord.messages.items()):
            for message in list(messages):
                if message["id"] in seen_prompts:
                    continue
                if "Please confirm exactly this" in message["content"]:
                    seen_prompts.add(message["id"])
                    await asyncio.sleep(rng.uniform(0.1, 0.5))
                    _, ok = await discord.customer_writes(channel_id - 1, "yes")
                    run.yes_sent += ok
                buttons = [
                    c["custom_id"]
                    for row in message.get("components") or []
                    for c in row["components"]
                    if not c.get("disabled")
                ]
                approve = next((b for b in buttons if b.startswith("ticket:approve:")), None)
                now = time.monotonic()
                if (
                    approve
                    and channel_id == discord.staff_channel_id
                    and now - clicked.get(approve, 0) > 5
                ):
                    # again after 5 s if the card still offers it (a click lost in a kill)
                    clicked[approve] = now
                    run.clicks += await discord.operator_clicks(message, approve)


async def watch_stalls(discord: FakeDiscord, db: AnyDatabase, run: Run, until: float) -> None:
    last_done = time.monotonic()
    seen = 0
    while time.monotonic() < until:
        await asyncio.sleep(0.25)
        now = time.monotonic()
        done = [r for r in discord.requests[seen:] if 200 <= r.status < 300]
        seen = len(discord.requests)
        if done or not await owed(db):
            last_done = now
            continue
        gap = now - last_done
        run.stall_any = max(run.stall_any, gap)
        if run.up_since is not None and now - run.up_since > gap:
            run.stall_up = max(run.stall_up, gap)


async def chaos(
    bot: BotProcess,
    discord: FakeDiscord,
    rng: random.Random,
    run: Run,
    until: float,
    life: tuple[float, float],
) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(min(rng.uniform(*life), max(0.0, until - time.monotonic())))
        if time.monotonic() >= until:
            break
        await bot.kill()
        run.kills += 1
        run.up_since = None
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        await bot.start(discord)
        run.up_since = time.monotonic()


async def report(
    db: AnyDatabase, discord: FakeDiscord, run: Run, seconds: float, settled: bool
) -> dict[str, Any]:
    stored = {
        m
        for (m,) in await db.fetchall(
            "SELECT discord_message_id FROM turns WHERE kind = 'customer'"
            " AND discord_message_id IS NOT NULL"
        )
    }
    held = {
        m
        for (m,) in await db.fetchall(
            "SELECT discord_message_id FROM turns WHERE kind = 'customer' AND status = 'held'"
        )
    }
    runs = [tuple(r) for r in await db.fetchall("SELECT action, tag FROM chaos_runs")]
    confirmed = {
        json.loads(p)["tag"]
        for (p,) in await db.fetchall(
            "SELECT action_params FROM confirmations WHERE status = 'confirmed'"
        )
    }
    approved = {
        json.loads(p)["tag"]
        for (p,) in await db.fetchall(
            "SELECT action_params FROM tickets WHERE status = 'approved' AND action_params IS NOT"
            " NULL"
        )
    }
    received = {tag for tag, mid in run.sent.items() if mid in stored}
    answers: dict[str, int] = {}
    for channel_id, messages in discord.messages.items():
        if channel_id == discord.staff_channel_id or channel_id in discord.threads:
            continue
        for message in messages:
            if not message["content"].startswith(ANSWERS):
                # a confirmation prompt also shows the tag (an action's parameter); only answers
                # count
                continue
            for tag in set(TAG.findall(message["content"])):
                answers[tag] = answers.get(tag, 0) + 1
    to_person = {tag for tag in received if run.sent[tag] in held}
    answered = {tag for tag in received if answers.get(tag)} | to_person
    per_run: dict[tuple[str, str], int] = {}
    for action, tag in runs:
        per_run[(action, tag)] = per_run.get((action, tag), 0) + 1
    unapproved = [
        (a, t)
        for a, t in per_run
        if (a == "place_order" and t not in confirmed)
        or (a == "issue_refund" and t not in approved)
    ]
    requests = len(discord.requests)
    limited = sum(1 for r in discord.requests if r.status == 429)
    return {
        "seconds": round(seconds),
        "kills": run.kills,
        "settled": settled,
        "messages sent": len(run.sent),
        "delivered to a running bot": len(run.delivered),
        "sent while no bot was connected": len(run.sent) - len(run.delivered),
        "received (stored)": len(received),
        "answered": len(answered),
        "of them to a person": len(to_person),
        "lost": len(received - answered),
        "doubled": sum(1 for t in received if answers.get(t, 0) > 1),
        "not stored though delivered (killed before the commit)": len(run.delivered - received),
        "actions run": len(runs),
        "actions doubled": sum(1 for n in per_run.values() if n > 1),
        "actions without approval": len(unapproved),
        "yes typed": run.yes_sent,
        "approve clicks": run.clicks,
        "longest stall, bot up (s)": round(run.stall_up, 1),
        "longest stall, restarts included (s)": round(run.stall_any, 1),
        "requests to Discord": requests,
        "429s": limited,
        "429 share": f"{limited / requests:.1%}" if requests else "0%",
        "requests by route (top 4)": ", ".join(
            f"{key} {n}" for key, n in sorted(_by_route(discord).items(), key=lambda kv: -kv[1])[:4]
        ),
    }


def _by_route(discord: FakeDiscord) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in discord.requests:
        key = FakeDiscord.route_key(r.method, r.path)
        counts[key] = counts.get(key, 0) + 1
    return counts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--customers", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--life", type=float, nargs=2, default=(4.0, 12.0), help="a bot lives this long (s)"
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.03, help="share of model calls answered 529"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and the bot's log")
    parser.add_argument(
        "--postgres", metavar="URL", help="store in a fresh schema on this PostgreSQL server"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    discord = await FakeDiscord().start()
    claude = FakeClaude(default=scripted_claude(rng, args.failure_rate))
    await claude.start()
    work = Path(tempfile.mkdtemp(prefix="handoff-chaos-"))
    (work / "policy.toml").write_text(POLICY)
    async with contextlib.AsyncExitStack() as stack:
        target = (
            await stack.enter_async_context(postgres_schema(args.postgres))
            if args.postgres
            else work / "handoff.db"
        )
        await chaos_run(args, rng, discord, claude, work, target)


async def chaos_run(
    args: argparse.Namespace,
    rng: random.Random,
    discord: FakeDiscord,
    claude: FakeClaude,
    work: Path,
    target: Path | str,
) -> None:
    env = {
        **os.environ,
        "DISCORD_TOKEN": "chaos.token.value",
        "DISCORD_GUILD_ID": str(discord.guild_id),
        "DISCORD_STAFF_CHANNEL_ID": str(discord.staff_channel_id),
        "DISCORD_OPERATOR_ROLE_ID": str(discord.operator_role_id),
        "ANTHROPIC_API_KEY": "chaos-key",
        "ANTHROPIC_BASE_URL": claude.url,
        "HANDOFF_DB": str(target),
        "HANDOFF_POLICY": str(work / "policy.toml"),
        "HANDOFF_ACTIONS": "bench.chaos_actions",
        "DISCORD_API_BASE": discord.url,
        "HANDOFF_LOG_LEVEL": "INFO",
        "HANDOFF_LLM_MAX_RETRIES": "1",
    }
    bot = BotProcess(env, work / "bot.log")
    run = Run()
    started = time.monotonic()
    await bot.start(discord)
    run.up_since = time.monotonic()
    db = await database_for(target).open()  # the bench's own connection, to watch and count
    until = started + args.seconds
    watcher = asyncio.create_task(watch_stalls(discord, db, run, until + 90))
    prompts = asyncio.create_task(answer_prompts(discord, rng, run, until + 90))
    await asyncio.gather(
        customers(discord, rng, run, args.customers, until, bot),
        chaos(bot, discord, rng, run, until, tuple(args.life)),
    )
    # Settle: the bot stays up until nothing is owed or waiting (prompts are still answered
    # meanwhile).
    settled = False
    for _ in range(240):
        await asyncio.sleep(0.25)
        [[waiting]] = await db.fetchall("SELECT COUNT(*) FROM turns WHERE status = 'pending'")
        if not await owed(db) and not waiting:
            settled = True
            break
    watcher.cancel()
    prompts.cancel()
    await bot.stop()
    figures = await report(db, discord, run, time.monotonic() - started, settled)
    figures["store"] = str(db)
    await db.close()
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(f"(database and bot log in {work})" if args.keep else "")
    await claude.stop()
    await discord.stop()
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
