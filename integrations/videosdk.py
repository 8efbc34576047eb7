"""VideoSDK agents: the desk as the agent's stdio MCP server.

    from integrations.videosdk import handoff_mcp_server
    agent = MyVoiceAgent(instructions=..., mcp_servers=[handoff_mcp_server()])

The agent spawns ``python -m agent_api.stdio`` as it spawns any stdio server, discovers
``ask_human``, ``request_approval``, ``get_result`` and ``notify_operators``, and its model calls
them as tools. VideoSDK hands the model the tool's text: the desk's JSON result (``result_of``
reads it back for code that calls a tool itself).
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from typing import Any

from videosdk.agents import MCPServerStdio
from videosdk.agents.utils import FunctionTool, ToolError, create_generic_mcp_adapter

from integrations.desk import DEFAULT_URL

# VideoSDK's read timeout (5 s by default) would cut a call waiting for a person; and 1.0.30 hands
# it to the MCP SDK as a timedelta, which mcp 2.x rejects. 0 means none: each call is bounded by
# the stdio server instead (its wait_seconds, at most 50 s, plus 15 s).
NO_READ_TIMEOUT = 0


class HandoffStdioServer(MCPServerStdio):
    """VideoSDK's stdio provider, reading tools and results by mcp 2.x's names: videosdk-agents
    1.0.30 reads 1.x's (``inputSchema``, ``isError``), which the MCP SDK Handoff runs on renamed."""

    async def get_available_tools(self) -> list[FunctionTool]:
        if self.tool_registry.has_valid_cache():
            return self.tool_registry.get_cached_tools()
        session = self.connection_mgr.session
        if session is None:
            raise RuntimeError("MCP service provider not connected")
        listed = await session.list_tools()
        tools = [
            create_generic_mcp_adapter(
                tool_name=tool.name,
                tool_description=tool.description,
                input_schema=tool.input_schema,
                client_call_function=partial(self._call, tool.name),
            )
            for tool in listed.tools
        ]
        self.tool_registry.update_cache(tools)
        return tools

    async def _call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        session = self.connection_mgr.session
        if session is None:
            raise ToolError(f"Cannot execute tool '{name}': MCP connection not established")
        result = await session.call_tool(name, arguments)
        text = " ".join(getattr(block, "text", "") for block in result.content).strip()
        if result.is_error:
            raise ToolError(f"Tool '{name}' reported error: {text}")
        return {"output": text, "type": "text"}


def handoff_mcp_server(url: str | None = None, token: str | None = None) -> HandoffStdioServer:
    """The stdio server, forwarding to the bot at ``url`` with ``token`` (default: the
    environment's HANDOFF_MCP_URL and HANDOFF_MCP_TOKEN)."""
    env = dict(os.environ)
    env["HANDOFF_MCP_URL"] = url or env.get("HANDOFF_MCP_URL") or DEFAULT_URL
    if token:
        env["HANDOFF_MCP_TOKEN"] = token
    return HandoffStdioServer(
        executable_path=sys.executable,
        process_arguments=["-m", "agent_api.stdio"],
        environment_vars=env,
        session_timeout=NO_READ_TIMEOUT,
    )


def result_of(tool_output: dict[str, Any]) -> dict[str, Any]:
    """The desk's result from what a VideoSDK MCP tool returned (``{"output": "<json>"}``)."""
    output = tool_output.get("output")
    return json.loads(output) if isinstance(output, str) else dict(tool_output)
