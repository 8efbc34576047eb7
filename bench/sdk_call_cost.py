"""CPU cost of one anthropic SDK call against the local scripted server (no latency), one at a time.

    python -m bench.sdk_call_cost [--calls 300]

This is the floor under the conversation benchmark: at N=200, M=5, L=200 ms, 1000 answers must
fit in about 1.1 s of one event loop, i.e. about 1 ms of CPU per answer for everything.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import anthropic

from bench._harness import claude_server


async def run(calls: int) -> float:
    async with claude_server(0.0) as url:
        client = anthropic.AsyncAnthropic(api_key="bench", base_url=url, max_retries=0)
        messages = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
        for _ in range(20):  # warm-up: imports, first connection
            await client.messages.create(model="claude-bench", max_tokens=64, messages=messages)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            await client.messages.create(model="claude-bench", max_tokens=64, messages=messages)
        cpu_ms = (time.process_time() - cpu) / calls * 1000
        wall_ms = (time.perf_counter() - wall) / calls * 1000
        await client.close()
    print(f"anthropic SDK, {calls} sequential calls: {cpu_ms:.2f} ms CPU and {wall_ms:.2f} ms wall per call")
    return cpu_ms


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(run(parser.parse_args().calls))
