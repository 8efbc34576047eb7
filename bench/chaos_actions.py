"""The chaos benchmark's business actions: every run is a row, so a double or an unapproved run
shows.

``place_order`` is transactional (the customer confirms), ``issue_refund`` financial (an operator
approves). Both carry the customer message's tag, which ties a run to the request it answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.actions import ActionContext, action

TAGGED = {
    "type": "object",
    "properties": {"tag": {"type": "string", "maxLength": 20}},
    "required": ["tag"],
    "additionalProperties": False,
}


async def install(db: Any) -> None:
    await db.migrate_module("chaos", Path(__file__).with_name("chaos_migrations"))


async def _run(ctx: ActionContext, name: str, tag: str) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        await tx.insert(
            "INSERT INTO chaos_runs (action, tag, customer, at) VALUES (?, ?, ?, ?)",
            (name, tag, ctx.discord_user_id, ctx.now),
        )
    return {"done": name, "tag": tag}


@action("transactional", "Place an order (the customer confirms it).", TAGGED)
async def place_order(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Place an order"""
    return await _run(ctx, "place_order", params["tag"])


@action("financial", "Refund an order (an operator approves it).", TAGGED)
async def issue_refund(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Refund an order"""
    return await _run(ctx, "issue_refund", params["tag"])


ACTIONS = [place_order, issue_refund]
