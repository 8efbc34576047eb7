"""Claude Code (through the Claude Agent SDK) on a project, its risky steps approved on Discord.

    ANTHROPIC_API_KEY=... HANDOFF_MCP_TOKEN=... python examples/claude_code_guarded.py \
        --project ~/src/shop "Remove the old build directory and run the tests" [--run-id fix-77]

Every tool use Claude wants goes through ``can_use_tool``: reading, searching and ordinary commands
run at once; deleting, sudo, git push, downloads and writes outside --project go to the operators
(request_approval, with the command and why it is risky). A denial reaches Claude with the
operator's reason. Prints JSON: Claude's final result and each tool result it got back.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import anyio
from claude_agent_sdk import ClaudeAgentOptions, ResultMessage, ToolResultBlock, UserMessage, query

from integrations.claude_agent_sdk import desk_permission
from integrations.desk import HandoffDesk


async def run(task: str, project: Path, run_id: str, give_up_after: float) -> dict[str, Any]:
    desk = HandoffDesk(give_up_after=give_up_after)
    options = ClaudeAgentOptions(
        cwd=project,
        can_use_tool=desk_permission(desk, project_dir=project, run_id=run_id),
        max_turns=20,
    )

    async def prompt() -> Any:  # can_use_tool needs the SDK's streaming mode
        yield {"type": "user", "message": {"role": "user", "content": task}}

    outcome: dict[str, Any] = {"result": None, "tool_results": []}
    async for message in query(prompt=prompt(), options=options):
        if isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    outcome["tool_results"].append(
                        {"error": bool(block.is_error), "content": str(block.content)[:500]}
                    )
        elif isinstance(message, ResultMessage):
            outcome["result"] = message.result
    return outcome


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--run-id", default="claude-code", help="the same id: the same tickets")
    parser.add_argument("--give-up-after", type=float, default=600)
    args = parser.parse_args()
    project = args.project.expanduser().resolve()
    print(json.dumps(anyio.run(run, args.task, project, args.run_id, args.give_up_after)))
