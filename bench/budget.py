"""Discord's request budget under a crowd: requests per answer, 429s, answer latency against the
floor.

    python -m bench.budget [--customers 200] [--messages 3] [--latency 2.0] [--refunds 0.0] [--root
    PATH]

Runs the real ``python bot.py`` (of this checkout, or of ``--root``, to compare two versions) as a
child process against the local stand-ins: Discord's REST API and gateway
(``rehearsal/discord_stand_in.py``: 50 requests/s in all, 5 messages per 5 s per channel,
Discord's 429 answers and rate-limit headers) and the Messages API
(``rehearsal/scripted_claude.py``, answering after ``--latency`` seconds). Each customer writes a
DM, waits for its answer, and writes the next, all customers at once. With ``--refunds`` a share
of the messages asks for a refund: an approval ticket, whose card the operator approves with its
button.

Prints the bot's requests per answer (every request after start-up, typing and ticket posts
included), the 429s among them, the answers' latency (DM sent -> answer stored by Discord) at
p50/p99, the floor the budget sets (all requests at 45 a second), and, with refunds, how fast
Discord saw each button click acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chaos import BotProcess  # noqa: E402
from tests.fake_claude import FakeClaude, Reply, text, tool_calls  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402

CUSTOMER_BASE = 600000000000000000
TAG = re.compile(r"\bm\d+\b")
PACE = 45.0  # [discord] requests_per_second, the default
POLICY = "[mfa]\nenabled = false\n"


def scripted(latency: float) -> Any:
    def answer(request: dict[str, Any]) -> Reply:
        last = request["messages"][-1]["content"]
        # The customer's own words: system notes and operators' lines (merged into the same message)
        # start with [.
        said = " ".join(
            b["text"] for b in last if b.get("type") == "text" and not b["text"].startswith("[")
        )
        tags = TAG.findall(said)
        if any(b.get("type") == "tool_result" for b in last) or not tags:
            return text("Noted.", delay=latency)
        if "refund" in said:
            return tool_calls(("issue_refund", {"tag": tags[-1]}), delay=latency)
        return text(f"Answer to {tags[-1]}.", delay=latency)

    return answer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--latency", type=float, default=2.0, help="the model's answer time (s)")
    parser.add_argument(
        "--refunds", type=float, default=0.0, help="share of messages asking for a refund"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose bot.py runs")
    parser.add_argument(
        "--within", type=float, default=120, help="an answer later than this counts as lost"
    )
    parser.add_argument(
        "--claude-rpm", type=int, default=4000, help="the key's limit the stand-in announces"
    )
    parser.add_argument(
        "--llm-concurrency", type=int, default=0, help="HANDOFF_LLM_CONCURRENCY (0: the default)"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    discord = await FakeDiscord().start()
    claude = FakeClaude(default=scripted(args.latency), requests_per_minute=args.claude_rpm)
    await claude.start()
    work = Path(tempfile.mkdtemp(prefix="handoff-budget-"))
    (work / "policy.toml").write_text(POLICY)
    env = {
        **os.environ,
        "DISCORD_TOKEN": "budget.token.value",
        "DISCORD_GUILD_ID": str(discord.guild_id),
        "DISCORD_STAFF_CHANNEL_ID": str(discord.staff_channel_id),
        "DISCORD_OPERATOR_ROLE_ID": str(discord.operator_role_id),
        "ANTHROPIC_API_KEY": "budget-key",
        "ANTHROPIC_BASE_URL": claude.url,
        "HANDOFF_DB": str(work / "handoff.db"),
        "HANDOFF_POLICY": str(work / "policy.toml"),
        "HANDOFF_ACTIONS": "bench.chaos_actions",
        "DISCORD_API_BASE": discord.url,
        "HANDOFF_LOG_LEVEL": "INFO",
    }
    if args.llm_concurrency:  # the most Claude calls at once (default: the bot's own)
        env["HANDOFF_LLM_CONCURRENCY"] = str(args.llm_concurrency)
    bot = BotProcess(env, work / "bot.log")
    bot_root = args.root.resolve()
    await bot.start(discord, cwd=bot_root)
    await asyncio.sleep(2.0)  # start-up requests (commands, set-up check) are not the crowd's
    first_request = len(discord.requests)
    numbers = iter(range(1, 10**9))
    latencies: list[float] = []
    lost = 0
    clicks: list[tuple[float, int]] = []  # (when the operator clicked, interaction id)
    stop_clicking = asyncio.Event()

    async def customer(i: int) -> None:
        nonlocal lost
        user = CUSTOMER_BASE + i
        await asyncio.sleep(rng.uniform(0, 1.0))
        for _ in range(args.messages):
            tag = f"m{next(numbers)}"
            words = (
                "please refund my order" if rng.random() < args.refunds else "where is my parcel"
            )
            sent_at = time.monotonic()
            await discord.customer_writes(user, f"{words} ({tag})")
            while time.monotonic() - sent_at < args.within:
                await asyncio.sleep(0.05)
                if any(
                    tag in m["content"]
                    or (
                        "ticket" in m["content"]
                        and words.startswith("please refund")
                        and float(m.get("_seen", 0)) >= sent_at
                    )
                    for m in discord.messages.get(user + 1, [])
                ):
                    break
            else:
                lost += 1
                if os.environ.get("BUDGET_DEBUG"):
                    print(
                        "lost",
                        tag,
                        words,
                        [m["content"][:60] for m in discord.messages.get(user + 1, [])],
                    )
                continue
            answered = next(
                (
                    r.at
                    for r in discord.requests
                    if r.method == "POST"
                    and r.status == 200
                    and r.path == f"/channels/{user + 1}/messages"
                    and r.at >= sent_at
                    and tag in str((r.body or {}).get("content", ""))
                ),
                None,
            )
            if answered is None:  # a refund's first answer is the ticket notice (no tag in it)
                answered = next(
                    (
                        r.at
                        for r in discord.requests
                        if r.method == "POST"
                        and r.status == 200
                        and r.path == f"/channels/{user + 1}/messages"
                        and r.at >= sent_at
                    ),
                    time.monotonic(),
                )
            latencies.append(answered - sent_at)
            await asyncio.sleep(rng.uniform(0.2, 1.0))  # reading before writing again

    async def operator() -> None:
        clicked: set[str] = set()
        while not stop_clicking.is_set():
            await asyncio.sleep(0.5)
            for message in list(discord.messages.get(discord.staff_channel_id, [])):
                for row in message.get("components") or []:
                    for button in row["components"]:
                        custom_id = button["custom_id"]
                        if (
                            custom_id.startswith("ticket:approve:")
                            and custom_id not in clicked
                            and not button.get("disabled")
                        ):
                            clicked.add(custom_id)
                            before = len(discord.requests)
                            clicks.append((time.monotonic(), before))
                            await discord.operator_clicks(message, custom_id)

    # Stamp each stored message with when Discord stored it (refund notices carry no tag).
    original = discord._message

    def stamped(channel_id: int, body: dict[str, Any], nonce: str) -> dict[str, Any]:
        message = original(channel_id, body, nonce)
        message["_seen"] = time.monotonic()
        return message

    discord._message = stamped  # type: ignore[method-assign]
    started = time.monotonic()
    clicking = asyncio.create_task(operator())
    await asyncio.gather(*(customer(i) for i in range(args.customers)))
    wall = time.monotonic() - started
    await asyncio.sleep(3.0 if args.refunds else 0.5)
    stop_clicking.set()
    await clicking
    crowd = discord.requests[first_request:]
    await bot.stop()
    requests = [r for r in crowd if not r.path.startswith(("/interactions", "/webhooks"))]
    limited = sum(1 for r in requests if r.status == 429)
    answers = len(latencies)
    floor = len(requests) / PACE
    acks = []
    for clicked_at, _ in clicks:
        ack = next(
            (r.at for r in crowd if r.path.startswith("/interactions") and r.at >= clicked_at), None
        )
        if ack is not None:
            acks.append(ack - clicked_at)
    by_route: dict[str, int] = {}
    for r in requests:
        key = FakeDiscord.route_key(r.method, r.path)
        by_route[key] = by_route.get(key, 0) + 1
    print(f"bot: {bot_root}")
    print(
        f"customers={args.customers} messages={args.messages} model latency={args.latency:g} s"
        f" refunds={args.refunds:.0%}: {answers} answers in {wall:.1f} s, {lost} lost (none within"
        f" {args.within:g} s)"
    )
    print(
        f"requests to Discord (after start-up): {len(requests)} ="
        f" {len(requests) / max(answers, 1):.2f} per answer (target <= 1.2)"
    )
    print(
        f"429 answers: {limited} = {limited / max(len(requests), 1):.2%} of requests (target <= 1%)"
    )
    print(
        f"answer latency: p50 {percentile(latencies, 0.5):.2f} s, p99"
        f" {percentile(latencies, 0.99):.2f} s, max {max(latencies, default=float('nan')):.2f} s"
    )
    print(
        f"floor set by the budget: {len(requests)} requests / {PACE:g} per s = {floor:.1f} s;"
        f" p99 / floor = {percentile(latencies, 0.99) / floor:.2f} (target <= 1.25); model latency"
        f" {args.latency:g} s per round"
    )
    if clicks:
        print(
            f"operator clicks: {len(clicks)}, acknowledged {len(acks)}: p50"
            f" {percentile(acks, 0.5) * 1000:.0f} ms, p99 {percentile(acks, 0.99) * 1000:.0f} ms"
            " (target p99 < 500 ms)"
        )
    print(
        "requests by route: "
        + ", ".join(f"{k} {n}" for k, n in sorted(by_route.items(), key=lambda kv: -kv[1]))
    )
    if (work / "bot.log").exists():
        budget_lines = [
            line for line in (work / "bot.log").read_text().splitlines() if "request budget" in line
        ]
        print(
            f"log lines about the budget: {len(budget_lines)}"
            + (f"; last: {budget_lines[-1][:160]}" if budget_lines else "")
        )
    await claude.stop()
    await discord.stop()
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
