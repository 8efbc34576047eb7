"""OpenAI Agents SDK: the desk as the agent's MCP server, and its ``needs_approval`` tools decided
by operators.

    agent = Agent(name="support", mcp_servers=[handoff_mcp_server()], tools=[issue_refund])
    # issue_refund = function_tool(..., needs_approval=True)
    async with agent.mcp_servers[0]:
        result = await run_with_desk(agent, "Refund order 4411", HandoffDesk(), run_id="conv-77")

The model calls ``ask_human`` and the other desk tools itself, over streamable HTTP. A tool marked
``needs_approval`` stops the run with an interruption; ``run_with_desk`` puts each to
``request_approval`` (the tool's name and arguments; key: the run id and the call id), approves or
rejects it in the run's state and goes on. An operator's edit is not the call the model made: it
is rejected with the edited arguments in the message, and the model's next call with exactly
those is approved without asking again. Undecided calls are rejected, never run.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import Agent, Runner, RunResult
from agents.items import ToolApprovalItem
from agents.mcp import MCPServerStreamableHttp

from core.agent_desk import MAX_WAIT
from integrations.desk import Decision, HandoffDesk, key_for


def handoff_mcp_server(url: str | None = None, token: str | None = None) -> MCPServerStreamableHttp:
    desk = HandoffDesk(url, token)  # reads HANDOFF_MCP_URL / HANDOFF_MCP_TOKEN when not given
    return MCPServerStreamableHttp(
        params={
            "url": desk.url,
            "headers": {"Authorization": f"Bearer {desk.token}"},
            "timeout": MAX_WAIT + 15,  # a call may wait for a person
        },
        name="handoff",
        client_session_timeout_seconds=MAX_WAIT + 15,
        cache_tools_list=True,
    )


async def run_with_desk(
    agent: Agent[Any], run_input: str | list[Any], desk: HandoffDesk, *, run_id: str, **kwargs: Any
) -> RunResult:
    """``Runner.run`` with every approval it stops for decided by an operator."""
    granted: set[tuple[str, str]] = set()  # (tool, arguments) an operator set by editing
    result = await Runner.run(agent, run_input, **kwargs)
    while result.interruptions:
        state = result.to_state()
        pending = result.interruptions
        decisions = await asyncio.gather(
            *(_decide(desk, run_id, item, granted) for item in pending)
        )
        for item, decision in zip(pending, decisions, strict=True):
            if decision is None or decision.status == "approved":
                state.approve(item)
            elif decision.status == "edited":
                granted.add((item.name or "", _canonical(decision.details)))
                state.reject(item, rejection_message=_edited(decision))
            else:
                state.reject(item, rejection_message=f"Not done: {decision.explained()}.")
        result = await Runner.run(agent, state, **kwargs)
    return result


async def _decide(
    desk: HandoffDesk, run_id: str, item: ToolApprovalItem, granted: set[tuple[str, str]]
) -> Decision | None:
    arguments = json.loads(item.arguments or "{}")
    if (item.name or "", _canonical(arguments)) in granted:
        return None  # exactly what an operator wrote when editing: already approved
    key = key_for("openai-agents", run_id, item.call_id or _canonical(arguments))
    return await desk.approve(item.name or "tool", arguments, key=key)


def _canonical(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True)


def _edited(decision: Decision) -> str:
    return (
        f"Not done as asked: {decision.explained()}. The operator approved these arguments"
        f" instead: {json.dumps(decision.details)}. Call the tool again with exactly these."
    )
