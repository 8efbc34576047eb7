"""The MCP tasks extension on the desk: a client that declares io.modelcontextprotocol/tasks gets a
task for ask_human and request_approval (created, polled with tasks/get, completed or cancelled),
through the official client's extension interface; clients without it wait as before."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx2
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    CallToolResult,
    CancelTaskRequest,
    CancelTaskRequestParams,
    GetTaskRequest,
    GetTaskRequestParams,
    Result,
)

from tests.desk_support import buttons
from tests.test_agents import PRICING, TOKENS, Agents

EXTENSION = "io.modelcontextprotocol/tasks"


class TaskHandle(Result):
    """What a task-augmented tools/call returns (resultType "task")."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class TaskState(Result):
    """tasks/get's answer: the task, with its result once completed."""

    task_id: str
    status: str
    status_message: str | None = None
    result: dict[str, Any] | None = None


async def get_task(session: Any, task_id: str) -> TaskState:
    request = GetTaskRequest(params=GetTaskRequestParams(task_id=task_id))
    return await session.send_request(request, TaskState)


class Tasks(ClientExtension):
    """A requester of the tasks extension: resolves a task by polling tasks/get."""

    identifier = EXTENSION

    def __init__(self, poll_seconds: float = 0.05) -> None:
        self.poll_seconds = poll_seconds
        self.handles: list[TaskHandle] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self._resolve)]

    async def _resolve(self, handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
        self.handles.append(handle)
        while True:
            state = await get_task(ctx.session, handle.task_id)
            if state.status == "completed" and state.result is not None:
                return CallToolResult.model_validate(state.result)
            if state.status in ("cancelled", "failed"):
                raise RuntimeError(f"task {handle.task_id} {state.status}")
            await asyncio.sleep(self.poll_seconds)


@contextlib.asynccontextmanager
async def tasks_client(agents: Agents, tasks: Tasks) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKENS[PRICING]}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(agents.url, http_client=http), extensions=[tasks]) as client,
    ):
        yield client


async def test_a_task_is_created_at_once_polled_and_completed(agents):
    tasks = Tasks()
    async with tasks_client(agents, tasks) as client:
        started = asyncio.get_running_loop().time()
        handle = await client.session.call_tool(
            "ask_human", {"question": "Open on Sunday?", "wait_seconds": 40}, allow_claimed=True
        )
        assert asyncio.get_running_loop().time() - started < 5, "no 40-second wait"
        assert isinstance(handle, TaskHandle)
        assert (handle.task_id, handle.status) == ("ticket-1", "working")
        assert handle.poll_interval_ms == 5000 and handle.ttl_ms is None
        state = await get_task(client.session, "ticket-1")
        assert state.status == "working" and "waiting for an answer" in state.status_message
        await agents.posted(1)
        await agents.desk.write(1, "Yes, 10 to 4.")
        state = await get_task(client.session, "ticket-1")
    assert state.status == "completed"
    expected = (await agents.call("get_result", ticket=1)).structured_content
    assert state.result["structuredContent"] == expected and expected["answer"] == "Yes, 10 to 4."


async def test_the_official_client_resolves_an_approval_task_transparently(agents):
    tasks = Tasks()
    async with tasks_client(agents, tasks) as client:
        call = asyncio.create_task(
            client.call_tool("request_approval", {"action": "refund", "details": {"order": 7}})
        )
        await agents.posted(1)
        await agents.desk.click(1, "approve")
        result = await asyncio.wait_for(call, 10)
    assert [h.task_id for h in tasks.handles] == ["ticket-1"]
    assert result.structured_content["status"] == "approved"


async def test_cancelling_a_task_withdraws_the_ticket(agents):
    async with tasks_client(agents, Tasks()) as client:
        handle = await client.session.call_tool(
            "request_approval",
            {"action": "block_card", "details": {"card": "4242"}},
            allow_claimed=True,
        )
        await agents.posted(1)
        seen = await agents.desk.screen(1)
        cancel = CancelTaskRequest(params=CancelTaskRequestParams(task_id=handle.task_id))
        await client.session.send_request(cancel, Result)
        state = await get_task(client.session, handle.task_id)
        assert state.status == "cancelled"
        unknown = CancelTaskRequest(params=CancelTaskRequestParams(task_id="ticket-99"))
        with pytest.raises(Exception, match="no agent ticket #99"):
            await client.session.send_request(unknown, Result)
    assert (await agents.call("get_result", ticket=1)).structured_content == {
        "ticket": 1,
        "status": "withdrawn",
    }
    for _ in range(100):
        if await buttons(agents.desk, 1) == []:
            break
        await asyncio.sleep(0.02)
    assert await buttons(agents.desk, 1) == [], "withdrawn: the card's buttons go"
    await agents.desk.click(1, "approve", seen=seen)
    told, _ = (await agents.desk.told(1))[-1]
    assert told == "Ticket #1 was already closed.", "a stale Approve is refused"
    approved = await agents.desk.h.fetch("SELECT COUNT(*) FROM audit WHERE action = 'approved'")
    assert approved[0][0] == 0


async def test_clients_without_the_extension_wait_as_before(agents):
    call = asyncio.create_task(agents.call("ask_human", question="Still there?", wait_seconds=20))
    await agents.posted(1)
    await agents.desk.write(1, "Yes.")
    result = await asyncio.wait_for(call, 10)
    assert result.structured_content["status"] == "answered"
