"""An OpenAI Agents SDK support agent with the Handoff desk: it asks operators what it does not
know (the desk's MCP tools) and its refunds wait for an operator's approval (``needs_approval``).

    OPENAI_API_KEY=... HANDOFF_MCP_TOKEN=... python examples/openai_agents_refund.py \
        "Order 4411 arrived broken, can I get my 30 EUR back?" [--run-id conv-77]

Prints the agent's final answer. The refund tool only runs once an operator approved it on
Discord; a denial reaches the model as the tool's result, with the operator's reason.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agents import Agent, Model, function_tool

from integrations.desk import HandoffDesk
from integrations.openai_agents import handoff_mcp_server, run_with_desk

REFUNDS: list[dict[str, Any]] = []  # stands for the shop's payment system


@function_tool(needs_approval=True)
def issue_refund(order: int, amount: float, reason: str) -> str:
    """Refund part or all of an order to the customer's card.

    Args:
        order: the order number.
        amount: euros to refund.
        reason: why, in a sentence.
    """
    REFUNDS.append({"order": order, "amount": amount, "reason": reason})
    return f"refunded {amount:.2f} EUR on order {order}"


def build_agent(model: str | Model | None = None, **desk: Any) -> Agent[Any]:
    return Agent(
        name="support",
        instructions=(
            "You help the shop's customers. Ask a person (ask_human) what the shop's policy does"
            " not tell you; refunds need a person's approval, which issue_refund asks for itself."
        ),
        tools=[issue_refund],
        mcp_servers=[handoff_mcp_server(**desk)],
        **({"model": model} if model is not None else {}),
    )


async def main(message: str, run_id: str) -> str:
    agent = build_agent()
    async with agent.mcp_servers[0]:
        result = await run_with_desk(agent, message, HandoffDesk(), run_id=run_id)
    return str(result.final_output)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message")
    parser.add_argument("--run-id", default="example", help="the same id: the same tickets")
    args = parser.parse_args()
    print(asyncio.run(main(args.message, args.run_id)))
