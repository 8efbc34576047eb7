"""N agents wait in ask_human at once; an operator answers their tickets in random order.

    python -m bench.agents [--agents 200] [--seed 1] [--via http|stdio] [--webhooks]

Each agent calls ``ask_human`` with the official MCP client (streamable HTTP, its own connection)
against the MCP server the bot serves on 127.0.0.1, and waits (wait_seconds 50). Once every ticket
has its thread, an operator answers them one by one in a random order (dpytest stands in for
Discord). Prints the share of answers that reached the agent that asked (must be 100%), the time
from the operator's message reaching the bot to the agent's tool result (p50/p99; target p99 <= 50
ms), and the process's memory growth per waiting call (the agents run in a child process, so this is
the bot's own share). ``--webhooks``: each call also gives a notify_url (a receiver in the agents'
process), and the time from the operator's message to the signed POST arriving is printed too
(target p99 <= 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from typing import Any

import discord
import httpx2
import psutil
from discord.ext.test import backend
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from agent_api.server import McpService, PortLimits
from bench._harness import bench_bot, summary_ms
from tests.dpytest_ext import make_operator
from tests.fake_claude import FakeClaude

NAMES = 10  # agents' names (tokens); many calls share one
TOKENS = {f"agent-{i}": f"bench-token-{i:02d}-" + "x" * 20 for i in range(NAMES)}


async def receiver() -> tuple[str, Any]:
    """The agents' webhook endpoint: one line per POST received on stdout."""
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        result = json.loads(await request.read())
        print(json.dumps({"hook": result["ticket"], "at": time.perf_counter()}), flush=True)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}/hook", runner


async def clients(endpoint: str, count: int, via: str, webhooks: bool = False) -> None:
    """The agents, in a process of their own (``--client``): one line per answered call on
    stdout. ``via`` stdio: each agent name's calls go through one ``python -m agent_api.stdio``
    process (as a framework spawns it), which forwards them to the endpoint."""
    hook_url, runner = await receiver() if webhooks else ("", None)
    arguments = [
        {
            "question": f"question {i}",
            "wait_seconds": 50,
            "idempotency_key": f"q{i}",
            **({"notify_url": hook_url} if webhooks else {}),
        }
        for i in range(count)
    ]

    everyone_answered = asyncio.Event()
    answers = 0

    def answered(i: int, result: Any) -> None:
        nonlocal answers
        print(
            json.dumps({"i": i, "at": time.perf_counter(), "result": result.structured_content}),
            flush=True,
        )
        answers += 1
        if answers == count:
            everyone_answered.set()

    async def over_http(i: int) -> None:
        name = f"agent-{i % NAMES}"
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {TOKENS[name]}"}, timeout=70
            ) as http,
            Client(streamable_http_client(endpoint, http_client=http)) as client,
        ):
            answered(i, await client.call_tool("ask_human", arguments[i]))

    async def over_stdio(name: str) -> None:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "agent_api.stdio"],
            env={**os.environ, "HANDOFF_MCP_URL": endpoint, "HANDOFF_MCP_TOKEN": TOKENS[name]},
        )
        mine = [i for i in range(count) if f"agent-{i % NAMES}" == name]
        async with Client(params) as client:

            async def one(i: int) -> None:
                answered(i, await client.call_tool("ask_human", arguments[i]))

            await asyncio.gather(*(one(i) for i in mine))
            # a framework keeps its stdio server for the agent's life: stopping this one (and its
            # interpreter's exit) while others' answers are measured would time the shutdown
            await everyone_answered.wait()

    if via == "stdio":
        await asyncio.gather(*(over_stdio(name) for name in TOKENS))
    else:
        await asyncio.gather(*(over_http(i) for i in range(count)))
    if runner is not None:
        await asyncio.sleep(2)  # the last webhooks
        await runner.cleanup()


async def run(count: int, seed: int, via: str, webhooks: bool = False) -> None:
    fake = FakeClaude()
    url = await fake.start()
    try:
        async with bench_bot(url, 2, concurrency=8) as bot:
            people = [m for m in backend.get_state().guilds[0].members if m.id != bot.user.id]
            operator = make_operator(bot, people[-1])
            # each agent's own connection over HTTP: the port must take them all, as a deployer
            # expecting this crowd sets [agents] max_connections
            limits = PortLimits(max_connections=count + 64, max_calls_per_agent=count)
            service = McpService(bot.agents, TOKENS, host="127.0.0.1", port=0, limits=limits)
            await service.start()
            bot.app.webhooks.use_tokens(TOKENS)
            endpoint = f"http://127.0.0.1:{service.bound_port}/mcp"
            process = psutil.Process()
            rss_before = process.memory_info().rss
            loop = asyncio.get_running_loop()
            done: dict[int, asyncio.Future[tuple[float, dict[str, Any]]]] = {
                i: loop.create_future() for i in range(count)
            }
            hooked: dict[int, asyncio.Future[float]] = {}  # ticket -> when its POST arrived
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.agents",
                "--client",
                endpoint,
                "--agents",
                str(count),
                "--via",
                via,
                *(["--webhooks"] if webhooks else []),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )

            async def read_answers() -> None:
                assert child.stdout is not None
                async for line in child.stdout:
                    record = json.loads(line)
                    if "hook" in record:
                        hooked.setdefault(record["hook"], loop.create_future()).set_result(
                            record["at"]
                        )
                    else:
                        done[record["i"]].set_result((record["at"], record["result"]))

            reader = asyncio.create_task(read_answers())
            started = time.perf_counter()
            while True:
                rows = await bot.db.fetchall("SELECT id, question, thread_id FROM tickets")
                if len(rows) == count and all(r["thread_id"] for r in rows):
                    break
                if time.perf_counter() - started > 60:
                    raise SystemExit(
                        f"only {len(rows)} of {count} tickets were opened and posted in 60 s"
                    )
                await asyncio.sleep(0.05)
            opened = time.perf_counter() - started
            await asyncio.sleep(0.5)  # every call is inside its wait
            rss_waiting = process.memory_info().rss
            threads = {int(r["question"].split()[1]): bot.get_channel(r["thread_id"]) for r in rows}
            assert all(isinstance(t, discord.Thread) for t in threads.values())
            order = list(range(count))
            random.Random(seed).shuffle(order)
            latencies = []
            pushed = []
            ticket_of = {int(r["question"].split()[1]): r["id"] for r in rows}
            results: dict[int, dict[str, Any]] = {}
            for i in order:
                sent_at = time.perf_counter()
                backend.make_message(f"answer to question {i}", operator, threads[i])
                at, results[i] = await asyncio.wait_for(done[i], 10)
                latencies.append(at - sent_at)
                if webhooks:
                    arrived = hooked.setdefault(ticket_of[i], loop.create_future())
                    pushed.append(await asyncio.wait_for(arrived, 10) - sent_at)
            await child.wait()
            await reader
            await service.stop()
    finally:
        await fake.stop()
    right = sum(1 for i, r in results.items() if r.get("answer") == f"answer to question {i}")
    print(
        f"agents={count} via {via}: {count} tickets opened and posted in {opened:.2f} s, every"
        " call waiting"
    )
    print(
        f"answers that reached the agent that asked: {right}/{count} = {right / count:.1%} (must be"
        " 100%)"
    )
    print(
        "operator's message -> the agent's tool result (target p99 <= 50 ms):"
        f" {summary_ms(latencies)}"
    )
    if webhooks:
        print(
            "operator's message -> the signed webhook POST received (target p99 <= 50 ms):"
            f" {summary_ms(pushed)}"
        )
    print(
        f"the bot's memory growth while {count} calls wait:"
        f" {(rss_waiting - rss_before) / 2**20:.1f} MB,"
        f" {(rss_waiting - rss_before) / count / 1024:.0f} KB per waiting call (the agents run in"
        " another process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--via", choices=("http", "stdio"), default="http", help="how the agents reach the desk"
    )
    parser.add_argument(
        "--webhooks", action="store_true", help="each call gives a notify_url; time the POSTs"
    )
    # the agents' side, in a child
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    asyncio.run(
        clients(args.client, args.agents, args.via, args.webhooks)
        if args.client
        else run(args.agents, args.seed, args.via, args.webhooks)
    )


if __name__ == "__main__":
    main()
