"""The desk over stdio (``python -m agent_api.stdio``), driven by the official SDK's stdio client
as a framework would spawn it, forwarding to the bot's endpoint through the Discord stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from agent_api.server import McpService
from tests.desk_support import desk_with, start_again
from tests.support import test_policy
from tests.test_agents import PRICING, ROOT, TOKENS, Agents


@pytest.fixture
async def agents(harness) -> AsyncIterator[Agents]:
    # 50 calls of one agent at once: above the default per-agent cap (32), as an operator would set
    policy = test_policy(agents={"max_calls_per_agent": 64})
    async with desk_with(harness, policy) as desk:
        world = Agents(desk)
        await world.serve()
        yield world
        await world.stop()


@contextlib.asynccontextmanager
async def stdio(url: str, token: str = TOKENS[PRICING]) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent_api.stdio"],
        env={**os.environ, "HANDOFF_MCP_URL": url, "HANDOFF_MCP_TOKEN": token},
        cwd=ROOT,
    )
    async with Client(params) as client:
        yield client


async def test_the_stdio_server_lists_the_desks_tools_and_an_answer_comes_back(agents):
    async with stdio(agents.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"ask_human", "request_approval", "get_result", "notify_operators"}
        assert tools["ask_human"].input_schema["required"] == ["question"]
        call = asyncio.create_task(
            client.call_tool("ask_human", {"question": "May I offer 10%?", "wait_seconds": 20})
        )
        await agents.posted(1)
        await agents.desk.write(1, "Yes, once.")
        result = await asyncio.wait_for(call, 15)
    assert not result.is_error
    assert result.structured_content == {
        "ticket": 1,
        "status": "answered",
        "answer": "Yes, once.",
        "answered_by": agents.desk.operator.display_name,
    }
    [row] = await agents.desk.h.fetch(
        "SELECT agent_name FROM customers WHERE agent_name IS NOT NULL"
    )
    assert row[0] == PRICING, "the stdio process speaks as the token's agent"


async def test_fifty_calls_through_one_stdio_process_each_get_their_own_answer(agents):
    async with stdio(agents.url) as client:
        calls = [
            asyncio.create_task(
                client.call_tool(
                    "ask_human",
                    {"question": f"question {i}?", "wait_seconds": 45, "idempotency_key": f"q{i}"},
                )
            )
            for i in range(50)
        ]
        for number in range(1, 51):
            await agents.posted(number)
        rows = await agents.desk.h.fetch("SELECT id, question FROM tickets ORDER BY id DESC")
        for ticket_id, question in rows:  # answered in reverse order
            await agents.desk.write(ticket_id, f"answer to {question}")
        results = await asyncio.wait_for(asyncio.gather(*calls), 60)
    for i, result in enumerate(results):
        assert result.structured_content["answer"] == f"answer to question {i}?", i


async def test_the_bot_unreachable_is_a_tool_error_at_once(agents):
    closed = "http://127.0.0.1:9/mcp"  # nothing listens there
    async with stdio(closed) as client:
        started = asyncio.get_running_loop().time()
        result = await client.call_tool("ask_human", {"question": "anyone?"})
        took = asyncio.get_running_loop().time() - started
    assert result.is_error and took < 5
    text: Any = result.content[0].text
    assert "could not be reached" in text and "Nothing was decided" in text


async def test_a_wrong_token_is_refused_as_over_http(agents):
    async with stdio(agents.url, token="x" * 40) as client:
        result = await client.call_tool("notify_operators", {"message": "hello"})
    assert result.is_error
    text: Any = result.content[0].text
    assert "refused this agent's token (HTTP 401)" in text, (
        "not 'could not be reached': no retry helps"
    )
    assert await agents.desk.h.fetch("SELECT id FROM tickets") == []


async def test_a_call_waiting_through_a_restart_of_the_bot_gets_its_answer_after(agents):
    port = agents.service.bound_port
    async with stdio(agents.url) as client:
        ask = {"question": "still there?", "wait_seconds": 40, "idempotency_key": "restart-1"}
        call = asyncio.create_task(client.call_tool("ask_human", ask))
        await agents.posted(1)
        await agents.stop()  # the bot goes down while the call waits: the call ends
        result = await asyncio.wait_for(call, 10)
        assert result.is_error or result.structured_content["status"] == "waiting", result
        await start_again(agents.desk, policy=test_policy(agents={"max_calls_per_agent": 64}))
        # the bot is back at the same address; an operator answers meanwhile
        agents.service = McpService(agents.desk.h.bot.agents, TOKENS, host="127.0.0.1", port=port)
        await agents.service.start()
        await agents.desk.write(1, "Yes, still here.")
        again = await client.call_tool("ask_human", {**ask, "wait_seconds": 5})
        result_of_one = await client.call_tool("get_result", {"ticket": 1})
    assert again.structured_content["ticket"] == 1, "the same key: the same ticket, not a second"
    assert again.structured_content["answer"] == "Yes, still here."
    assert result_of_one.structured_content["status"] == "answered"
    assert [r[0] for r in await agents.desk.h.fetch("SELECT id FROM tickets")] == [1]
