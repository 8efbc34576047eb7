"""LangGraph: a node pauses the graph for a person (``interrupt``); the desk's decision resumes it
(``Command(resume=...)``), in this process or in the next one.

    def approve_refund(state):
        decision = approval("refund", {"order": state["order"]}, amount=30, currency="EUR")
        return {"approved": decision["allowed"], "details": decision["details"]}

    values, waiting_on = await run_with_desk(graph, {"order": 4411}, config, HandoffDesk())

With a persistent checkpointer (e.g. ``AsyncSqliteSaver``), a process that stops while a person
has not decided loses nothing: the next ``run_with_desk`` on the same thread finds the paused
graph, asks the desk again with the same key (the thread's id and the interrupt's) and gets the
same ticket, decided or not. Only ``allowed`` decisions (approved, edited) may be acted on.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from langgraph.types import Command, Interrupt, interrupt

from integrations.desk import Decision, HandoffDesk, key_for

REQUEST = "handoff_request_approval"  # marks the interrupts this module asks the desk about


def approval(
    action: str,
    details: dict[str, Any],
    *,
    amount: float | None = None,
    currency: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Inside a node: pause until a person decides. Returns the decision: ``status``, ``allowed``,
    ``details`` (perhaps edited), ``reason``, ``decided_by``, ``ticket``."""
    request: dict[str, Any] = {"action": action, "details": details, "reason": reason}
    if amount is not None:
        request |= {"amount": amount, "currency": currency}
    decision: dict[str, Any] = interrupt({REQUEST: request})
    return decision


async def run_with_desk(
    graph: Any, graph_input: Any, config: dict[str, Any], desk: HandoffDesk
) -> tuple[dict[str, Any], list[int]]:
    """Run (or go on with) the thread in ``config`` until it ends or waits for a person: the
    graph's values, and the tickets still undecided (empty when the graph has ended)."""
    state = await graph.aget_state(config)
    if not state.next:  # nothing paused on this thread: a new run
        await graph.ainvoke(graph_input, config)
    while True:
        state = await graph.aget_state(config)
        asked = [i for i in state.interrupts if isinstance(i.value, dict) and REQUEST in i.value]
        if not asked:
            return state.values, []
        thread = config["configurable"]["thread_id"]
        decisions = await asyncio.gather(*(_decide(desk, thread, i) for i in asked))
        if not all(d.settled for d in decisions):
            return state.values, [d.ticket for d in decisions if not d.settled]
        resume = {
            i.id: {**asdict(d), "allowed": d.allowed} for i, d in zip(asked, decisions, strict=True)
        }
        await graph.ainvoke(Command(resume=resume), config)


async def _decide(desk: HandoffDesk, thread: str, paused: Interrupt) -> Decision:
    request = dict(paused.value[REQUEST])
    return await desk.approve(
        request.pop("action"),
        request.pop("details"),
        key=key_for("langgraph", thread, paused.id),
        **request,
    )
