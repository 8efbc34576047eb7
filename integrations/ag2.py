"""AG2 (``ag2`` 0.x, ``autogen``): an operator on Discord is the human of an agent with
``human_input_mode="ALWAYS"`` (or ``"TERMINATE"``), and actions go to ``request_approval``.

    desk = HandoffDesk()  # HANDOFF_MCP_URL, HANDOFF_MCP_TOKEN
    analyst = ConversableAgent("analyst", human_input_mode="ALWAYS", llm_config=False)
    use_desk_as_human(analyst, desk, run_id="batch-2026-12-06")
    approve = approval_tool(desk, run_id="batch-2026-12-06")  # register_function(approve, ...)

Each time AG2 would read a keyboard, the operators get the last message as a question in their
staff channel; their answer is the human's reply ("exit" ends the chat, "skip" lets the agent
carry on). Nobody answering within the desk client's ``give_up_after`` ends the chat ("exit"):
nothing goes on without a person. Keys come from the run id and the turn, so a rerun of the same
run finds the same tickets and their answers.
"""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any

from autogen import ConversableAgent

from integrations.desk import Answer, Decision, HandoffDesk, key_for

HOW_TO_REPLY = (
    "You are the human of AG2 agent '{name}' (run {run}). Your answer is its reply: 'exit' ends"
    " the conversation, 'skip' lets the agents carry on without you."
)


def use_desk_as_human(agent: ConversableAgent, desk: HandoffDesk, *, run_id: str) -> None:
    """Route ``agent``'s human input (both the sync and the async chat) to the desk."""
    turns = itertools.count(1)

    def question() -> tuple[str, str, str]:
        last = [conversation[-1] for conversation in agent.chat_messages.values() if conversation]
        said = str(last[-1].get("content") or "") if last else ""
        name = str(last[-1].get("name") or "the agent") if last else "the agent"
        key = key_for("ag2", run_id, agent.name, next(turns))
        context = HOW_TO_REPLY.format(name=agent.name, run=run_id)
        return (f"{name} says:\n{said}" if said else "Your reply?"), context, key

    def reply(answer: Answer) -> str:
        if not answer.answered:
            return "exit"
        text = answer.text.strip()
        return "" if text.lower() == "skip" else text

    def get_human_input(prompt: str, **_: Any) -> str:
        asked, context, key = question()
        return reply(desk.ask_blocking(asked, context=context, key=key))

    async def a_get_human_input(prompt: str, **_: Any) -> str:
        asked, context, key = question()
        return reply(await desk.ask(asked, context=context, key=key))

    agent.get_human_input = get_human_input  # type: ignore[method-assign]
    agent.a_get_human_input = a_get_human_input  # type: ignore[method-assign]


def approval_tool(desk: HandoffDesk, *, run_id: str) -> Any:
    """An async tool for ``register_function``: a person approves, edits or denies the action; the
    model gets the decision as text (only 'approved' or 'edited' allows it)."""

    async def request_approval(
        action: Annotated[str, "what you want to do, e.g. 'block_card' or 'refund'"],
        details: Annotated[dict[str, Any], "the action's parameters, as you would carry it out"],
        reason: Annotated[str, "why, in a sentence, for the person deciding"] = "",
        amount: Annotated[float | None, "the money involved, if any"] = None,
        currency: Annotated[str | None, "ISO code of the amount's currency"] = None,
    ) -> str:
        decision = await decide(desk, run_id, action, details, reason, amount, currency)
        return json.dumps({"decision": decision.explained(), "details": decision.details})

    return request_approval


async def decide(
    desk: HandoffDesk,
    run_id: str,
    action: str,
    details: dict[str, Any],
    reason: str = "",
    amount: float | None = None,
    currency: str | None = None,
) -> Decision:
    """The same action with the same details in the same run is the same ticket."""
    key = key_for("ag2", run_id, action, json.dumps(details, sort_keys=True, default=str))
    return await desk.approve(
        action, details, key=key, reason=reason, amount=amount, currency=currency
    )
