"""Ask a person through Handoff and wait for the answer, with the official MCP SDK.

    HANDOFF_MCP_TOKEN=... python examples/ask_and_wait.py "Is the Lisbon warehouse open on Sunday?"

The call returns within --wait seconds (at most 50, under MCP clients' 60 s cut); while the status
is "waiting" the script comes back with get_result, so it never blocks past a client's time-out, and
an answer that comes late is still received. --key makes a retry of this script reuse the same
ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def ask(
    url: str, token: str, question: str, *, wait: float, key: str | None, give_up_after: float
) -> dict:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        arguments = {
            "question": question,
            "wait_seconds": wait,
            **({"idempotency_key": key} if key else {}),
        }
        result = await client.call_tool("ask_human", arguments)
        if result.is_error:
            raise SystemExit(f"Handoff refused the question: {result.content[0].text}")
        answer = result.structured_content
        waited = wait
        while answer["status"] in ("waiting", "timed_out") and waited < give_up_after:
            print(
                f"ticket #{answer['ticket']}: {answer['status']}, asking again...", file=sys.stderr
            )
            answer = (
                await client.call_tool(
                    "get_result", {"ticket": answer["ticket"], "wait_seconds": wait}
                )
            ).structured_content
            waited += wait
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument(
        "--url", default=os.environ.get("HANDOFF_MCP_URL", "http://127.0.0.1:8765/mcp")
    )
    parser.add_argument("--wait", type=float, default=25, help="seconds per call (at most 50)")
    parser.add_argument(
        "--key", help="idempotency key: a retry with the same key reuses the ticket"
    )
    parser.add_argument(
        "--give-up-after", type=float, default=600, help="stop asking after this many seconds"
    )
    args = parser.parse_args()
    token = os.environ.get("HANDOFF_MCP_TOKEN", "")
    if not token:
        raise SystemExit(
            "set HANDOFF_MCP_TOKEN to this agent's token (the part after 'name:' in"
            " HANDOFF_MCP_TOKENS)"
        )
    answer = asyncio.run(
        ask(
            args.url,
            token,
            args.question,
            wait=args.wait,
            key=args.key,
            give_up_after=args.give_up_after,
        )
    )
    print(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    main()
