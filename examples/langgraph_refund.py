"""A LangGraph refund that waits for a person, across restarts of this script.

    HANDOFF_MCP_TOKEN=... python examples/langgraph_refund.py --thread order-4411 --order 4411 \
        --amount 30 --db refunds.sqlite [--give-up-after 600]

The graph checks the order, pauses in ``approve`` (an interrupt) while an operator decides on
Discord, then refunds or not. Its state is checkpointed in --db: stop the script while the
operator has not decided (or let --give-up-after pass: it prints status "waiting" and the ticket)
and run it again with the same --thread; it goes on where it paused, on the same ticket. Prints
JSON: the thread, "done" or "waiting", and the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph

from integrations.desk import HandoffDesk
from integrations.langgraph import approval, run_with_desk


class Refund(TypedDict, total=False):
    order: int
    amount: float
    reason: str
    decision: dict[str, Any]
    outcome: str


def check(state: Refund) -> Refund:
    return {"reason": f"order {state['order']} arrived broken (photo in the customer's ticket)"}


def approve(state: Refund) -> Refund:
    details = {"order": state["order"], "amount": state["amount"]}
    decision = approval(
        "refund", details, amount=state["amount"], currency="EUR", reason=state["reason"]
    )
    return {"decision": decision}


def refund(state: Refund) -> Refund:
    decision = state["decision"]
    if not decision["allowed"]:
        why = f": {decision['reason']}" if decision["reason"] else ""
        return {"outcome": f"not refunded ({decision['status']} by {decision['decided_by']}{why})"}
    amount = decision["details"].get("amount", state["amount"])  # an operator may have edited it
    return {"outcome": f"refunded {amount:.2f} EUR, approved by {decision['decided_by']}"}


def build(checkpointer: Any) -> Any:
    graph = StateGraph(Refund)
    graph.add_node("check", check)
    graph.add_node("approve", approve)
    graph.add_node("refund", refund)
    graph.add_edge(START, "check")
    graph.add_edge("check", "approve")
    graph.add_edge("approve", "refund")
    graph.add_edge("refund", END)
    return graph.compile(checkpointer=checkpointer)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    desk = HandoffDesk(give_up_after=args.give_up_after)
    config = {"configurable": {"thread_id": args.thread}}
    async with AsyncSqliteSaver.from_conn_string(args.db) as checkpointer:
        graph = build(checkpointer)
        values, waiting_on = await run_with_desk(
            graph, {"order": args.order, "amount": args.amount}, config, desk
        )
    if waiting_on:
        return {"thread": args.thread, "status": "waiting", "tickets": waiting_on}
    return {"thread": args.thread, "status": "done", "outcome": values["outcome"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thread", required=True)
    parser.add_argument("--order", type=int, required=True)
    parser.add_argument("--amount", type=float, required=True)
    parser.add_argument("--db", default="refunds.sqlite", help="the checkpointer's SQLite file")
    parser.add_argument("--give-up-after", type=float, default=600)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
