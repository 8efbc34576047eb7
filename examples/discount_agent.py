"""The scenario Handoff grew from: an agent may not guess which discount to offer, so it asks a
person.

    HANDOFF_MCP_TOKEN=... python examples/discount_agent.py --customer "Ada (order 4411)" --asking
    20

The agent asks the staff desk what discount it may offer, keeps talking to its caller meanwhile
(here: it just waits), and offers exactly what the operator answered. It then asks for approval of
the discount it is about to apply, so a person signs it off (Edit & approve may change the percent)
before anything happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def settle(client: Client, result: dict, *, wait: float, rounds: int) -> dict:
    for _ in range(rounds):
        if result["status"] not in ("waiting", "timed_out"):
            break
        result = (
            await client.call_tool("get_result", {"ticket": result["ticket"], "wait_seconds": wait})
        ).structured_content
    return result


async def run(
    url: str, token: str, customer: str, asking: int, *, wait: float, rounds: int
) -> dict:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        asked = await client.call_tool(
            "ask_human",
            {
                "question": (
                    f"{customer} asks for a {asking}% discount. What discount may I offer? Answer"
                    " with a percent, e.g. 10%."
                ),
                "context": "Voice call in progress; the customer is waiting on the line.",
                "priority": "high",
                "wait_seconds": wait,
                "idempotency_key": f"discount:{customer}",
            },
        )
        answer = await settle(client, asked.structured_content, wait=wait, rounds=rounds)
        if answer["status"] != "answered":
            return {"offered": None, "why": f"no answer from the desk ({answer['status']})"}
        found = re.search(r"(\d+(?:\.\d+)?)\s*%", answer["answer"])
        if not found:
            return {"offered": None, "why": f"the operator said: {answer['answer']}"}
        percent = float(found.group(1))
        approval = await client.call_tool(
            "request_approval",
            {
                "action": "apply_discount",
                "details": {"customer": customer, "percent": percent},
                "reason": f"{answer['answered_by']} said: {answer['answer']}",
                "wait_seconds": wait,
                "idempotency_key": f"apply:{customer}:{percent:g}",
            },
        )
        decided = await settle(client, approval.structured_content, wait=wait, rounds=rounds)
        if decided["status"] in ("approved", "edited"):
            return {"offered": decided["details"]["percent"], "approved_by": decided["decided_by"]}
        return {
            "offered": None,
            "why": f"not approved ({decided['status']}: {decided.get('reason', '')})",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default=os.environ.get("HANDOFF_MCP_URL", "http://127.0.0.1:8765/mcp")
    )
    parser.add_argument("--customer", default="Ada (order 4411)")
    parser.add_argument(
        "--asking", type=int, default=20, help="the discount the customer asks for, in percent"
    )
    parser.add_argument("--wait", type=float, default=25)
    parser.add_argument("--rounds", type=int, default=24, help="get_result calls before giving up")
    args = parser.parse_args()
    token = os.environ.get("HANDOFF_MCP_TOKEN", "")
    if not token:
        raise SystemExit(
            "set HANDOFF_MCP_TOKEN to this agent's token (the part after 'name:' in"
            " HANDOFF_MCP_TOKENS)"
        )
    print(
        json.dumps(
            asyncio.run(
                run(args.url, token, args.customer, args.asking, wait=args.wait, rounds=args.rounds)
            )
        )
    )


if __name__ == "__main__":
    main()
