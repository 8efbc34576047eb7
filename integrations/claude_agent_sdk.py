"""Claude Agent SDK: operators approve Claude Code's dangerous steps from Discord.

    options = ClaudeAgentOptions(
        cwd=project, can_use_tool=desk_permission(HandoffDesk(), project_dir=project, run_id=...)
    )

Before each tool use the SDK asks ``can_use_tool``. A risky one (``why_risky``: a shell command
that deletes, escalates, pushes or downloads; a write outside the project) goes to
``request_approval`` with the tool's input and the reason; Claude gets allow (with the operator's
edited input, if they edited it) or deny with the operator's reason. Anything else is allowed at
once. A decision not made in time is a deny: nothing risky runs without a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext

from integrations.claude_code_risk import why_risky
from integrations.desk import HandoffDesk, key_for

CanUseTool = Callable[[str, dict[str, Any], ToolPermissionContext], Any]


def desk_permission(
    desk: HandoffDesk,
    *,
    project_dir: str | Path,
    run_id: str,
    risky: Callable[[str, dict[str, Any], Path], str | None] = why_risky,
) -> CanUseTool:
    """A ``can_use_tool`` callback that asks operators about risky tool uses."""
    project = Path(project_dir)

    async def can_use_tool(
        tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow | PermissionResultDeny:
        reason = risky(tool_name, tool_input, project)
        if reason is None:
            return PermissionResultAllow()
        step = context.tool_use_id or json.dumps([tool_name, tool_input], sort_keys=True)
        decision = await desk.approve(
            f"claude_code.{tool_name}",
            tool_input,
            reason=reason,
            key=key_for("claude-agent-sdk", run_id, step),
        )
        if decision.allowed:
            edited = decision.details if decision.status == "edited" else None
            return PermissionResultAllow(updated_input=edited)
        return PermissionResultDeny(
            message=f"An operator did not allow this: {decision.explained()}"
        )

    return can_use_tool
