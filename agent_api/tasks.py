"""The MCP tasks extension (``io.modelcontextprotocol/tasks``, 2026-07-28) on the desk's endpoint.

A client that declares the extension in its request capabilities gets a task for ``ask_human`` and
``request_approval`` instead of a call that waits up to 50 seconds: the ticket is opened, and the
call returns at once with a task handle (``resultType: "task"``) whose id names the ticket.
``tasks/get`` reports it ``working`` while a person has not settled it, then ``completed`` with the
very result ``get_result`` returns; ``tasks/cancel`` withdraws the ticket (its card says so, its
buttons go) and the task is ``cancelled``. Tasks are tickets, so they outlive restarts. Clients
without the extension keep ``wait_seconds`` and ``get_result``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolRequestParams, CancelTaskRequestParams, GetTaskRequestParams
from mcp_types import RequestParams as _RequestParams

from core.agent_desk import AgentDesk, AgentError, result_of

EXTENSION = "io.modelcontextprotocol/tasks"
TASK_TOOLS = ("ask_human", "request_approval")
POLL_MS = 5000  # a person answers in minutes: no need to ask more often
TASK_ID = re.compile(r"^ticket-(?P<id>[0-9]{1,18})$")
INVALID_PARAMS = -32602


class UpdateTaskParams(_RequestParams):
    task_id: str
    input_responses: dict[str, Any] | None = None


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def _agent(ctx: ServerRequestContext[Any, Any]) -> str:
    request = ctx.request
    agent = getattr(request, "scope", {}).get("state", {}).get("agent") if request else None
    if agent is None:  # pragma: no cover - BearerAuth refuses such requests first
        raise MCPError(code=INVALID_PARAMS, message="not authorized")
    return str(agent)


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    extensions = getattr(capabilities, "extensions", None) or {}
    return EXTENSION in extensions


class DeskTasks(Extension):
    identifier = EXTENSION

    def __init__(self, agents: AgentDesk) -> None:
        self.agents = agents

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", GetTaskRequestParams, self._get),
            MethodBinding("tasks/cancel", CancelTaskRequestParams, self._cancel),
            MethodBinding("tasks/update", UpdateTaskParams, self._update),
        ]

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        if params.name not in TASK_TOOLS or not _declared(ctx):
            return await call_next(ctx)
        if params.arguments is not None:
            params.arguments["wait_seconds"] = 0  # the task waits, not the call
        result = await call_next(ctx)
        content = getattr(result, "structured_content", None)
        if getattr(result, "is_error", False) or not isinstance(content, dict):
            return result
        if content.get("status") != "waiting":
            return result  # settled at once (the policy approved it): the plain result
        return {"resultType": "task", **await self._task(_agent(ctx), int(content["ticket"]))}

    async def _task(self, agent: str, ticket_id: int) -> dict[str, Any]:
        ticket = await self.agents.own(agent, ticket_id)
        result = result_of(ticket)
        task: dict[str, Any] = {
            "taskId": f"ticket-{ticket.id}",
            "createdAt": _iso(ticket.created_at),
            "lastUpdatedAt": _iso(self.agents.clock.now()),
            "ttlMs": None,  # tickets are kept
            "pollIntervalMs": POLL_MS,
        }
        status = result["status"]
        if status == "withdrawn":
            return {**task, "status": "cancelled", "statusMessage": "withdrawn by the agent"}
        if status == "waiting":
            what = "an answer" if ticket.kind.asks_a_question else "a decision"
            return {
                **task,
                "status": "working",
                "statusMessage": f"waiting for {what} (ticket #{ticket.id})",
            }
        return {
            **task,
            "status": "completed",
            "statusMessage": status,
            "result": {
                "content": [{"type": "text", "text": json.dumps(result, ensure_ascii=False)}],
                "structuredContent": result,
                "isError": False,
            },
        }

    def _ticket(self, task_id: str) -> int:
        match = TASK_ID.match(task_id)
        if match is None:
            raise MCPError(code=INVALID_PARAMS, message=f"unknown task {task_id!r}")
        return int(match["id"])

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: Any) -> HandlerResult:
        try:
            return await self._task(_agent(ctx), self._ticket(params.task_id))
        except (AgentError, ToolError) as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: Any) -> HandlerResult:
        try:
            await self.agents.withdraw(_agent(ctx), self._ticket(params.task_id))
        except AgentError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return {}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: Any) -> HandlerResult:
        # the desk's tasks never ask the client for input: responses are ignored, as the
        # extension says of keys that are not outstanding
        try:
            await self.agents.own(_agent(ctx), self._ticket(params.task_id))
        except AgentError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
        return {}
