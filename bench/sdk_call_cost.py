"""CPU cost of one anthropic SDK call, the floor under the conversation benchmark.

    python -m bench.sdk_call_cost [--calls 300]

Calls go one at a time to the scripted server (no latency) with the request the bot really
sends: its system prompt, its 14 tools, and a five-message history. Measured: the SDK's defaults
(httpx transport, parsed into pydantic models) and what Handoff does (aiohttp transport, the raw
JSON), each with the server's own CPU per call (it shares this machine's cores).

At N=200, M=5, L=200 ms the conversation benchmark's target (ratio <= 1.10) leaves 1.1 s for
1000 answers. The last lines print the lowest ratio this machine could reach if the bot did
nothing but these SDK calls: on one event loop (Handoff is one process), and spread perfectly
over every core. The scripted server's CPU is left out there, as a real Claude is remote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import psutil

from actions import shop
from bench._harness import claude_server
from core.actions import ActionRegistry
from core.assistant import Assistant, Claude, claude_client
from core.steps.lifecycle import StepKinds
from core.tool_runner import ToolRunner
from tests.support import test_policy

ANSWERS, SECONDS = 1000, 1.0  # the N x M answers and ideal wall time M x L


def handoff_agent(client: anthropic.AsyncAnthropic) -> Assistant:
    policy = test_policy()
    # Only the request is built and sent: no tool runs, so the desk and the step kinds are never
    # reached.
    tools = ToolRunner(
        registry=ActionRegistry().extend(shop.ACTIONS),
        policy=policy,
        desk=None,  # type: ignore[arg-type]
        kinds=StepKinds.__new__(StepKinds),
    )
    return Assistant(Claude(client, "claude-bench", 1), policy=policy, tools=tools)


def history() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i in range(3):
        messages.append(
            {"role": "user", "content": [{"type": "text", "text": f"message {i} from a customer"}]}
        )
        messages.append(
            {"role": "assistant", "content": [{"type": "text", "text": f"You said: message {i}"}]}
        )
    return messages[:-1]


async def measure(call: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(client CPU ms, server CPU ms) per call."""
    [server] = psutil.Process().children()
    for _ in range(20):  # warm-up: imports, first connection
        await call()
    cpu, server_cpu = time.process_time(), sum(server.cpu_times()[:2])
    for _ in range(calls):
        await call()
    return (
        (time.process_time() - cpu) / calls * 1000,
        (sum(server.cpu_times()[:2]) - server_cpu) / calls * 1000,
    )


async def run(calls: int) -> float:
    async with claude_server(0.0) as url:
        default = anthropic.AsyncAnthropic(api_key="bench", base_url=url, max_retries=0)
        agent = handoff_agent(
            claude_client(api_key="bench", base_url=url, max_retries=0, timeout=30)
        )
        messages = history()
        request = agent.request(messages, final=False)
        print(
            f"request: {len(json.dumps(request))} bytes of JSON, {len(request['tools'])} tools;"
            f" {calls} calls each"
        )
        ways = {
            "SDK defaults": lambda: default.messages.create(**request),
            "as Handoff calls": lambda: agent._create(messages, final=False),
        }
        for name, call in ways.items():
            client_ms, server_ms = await measure(call, calls)
            print(
                f"{name:17} client {client_ms:.2f} ms CPU per call (scripted server:"
                f" {server_ms:.2f} ms)"
            )
        await default.close()
        await agent.close()
    cores = os.cpu_count() or 1
    one_loop = ANSWERS * client_ms / 1000 / SECONDS
    print(
        f"N=200, M=5, L=200 ms (ideal {SECONDS:.1f} s, target ratio 1.10), before any of the bot's"
        " own work:"
    )
    print(
        f"  on one event loop, {ANSWERS} calls x {client_ms:.2f} ms: ratio >="
        f" {max(1.0, one_loop):.2f}"
    )
    print(f"  spread perfectly over {cores} cores: ratio >= {max(1.0, one_loop / cores):.2f}")
    return client_ms


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000)
    asyncio.run(run(parser.parse_args().calls))
