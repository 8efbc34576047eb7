"""A VideoSDK voice agent whose human is the Handoff desk (a stdio MCP server it spawns).

    HANDOFF_MCP_TOKEN=... python examples/videosdk_support_agent.py --ask "Can we ship to Madeira?"

In a call, the agent's model sees ask_human, request_approval, get_result and notify_operators
among its tools and calls them itself; an operator's answer comes back as the tool's result while
the caller hears the agent say it is checking. Run here with --ask, the script starts the agent's
MCP layer without a call or audio (VideoSDK allows that: ``initialize_mcp``), lists the tools it
discovered and calls ask_human as the model would, printing the desk's result as JSON. In a real
deployment, put ``SupportAgent()`` in your ``AgentSession`` with your STT, LLM and TTS plugins.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from videosdk.agents import Agent
from videosdk.agents.utils import get_tool_info

from integrations.videosdk import handoff_mcp_server, result_of


class SupportAgent(Agent):
    def __init__(self) -> None:
        super().__init__(
            instructions=(
                "You are the shop's phone support. When a caller asks something you are not sure"
                " of, say you'll check with the team and call ask_human; if its status is"
                " 'waiting', keep the caller company and call get_result."
            ),
            mcp_servers=[handoff_mcp_server()],
        )

    async def on_enter(self) -> None:
        await self.session.say("Hello, this is the shop. How can I help?")

    async def on_exit(self) -> None:
        await self.session.say("Thank you for calling. Goodbye!")


async def ask(question: str, wait: float) -> dict:
    agent = SupportAgent()
    try:
        await agent.initialize_mcp()
        tools = {get_tool_info(tool).name: tool for tool in agent.tools}
        print(f"discovered: {', '.join(sorted(tools))}", file=sys.stderr)
        return result_of(await tools["ask_human"](question=question, wait_seconds=wait))
    finally:
        await agent.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ask", required=True, help="a question, asked as the agent's model would")
    parser.add_argument("--wait", type=float, default=25, help="seconds to wait (at most 50)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(ask(args.ask, args.wait))))
