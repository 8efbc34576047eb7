"""An example shop: an account, orders and a subscription per customer, in the Handoff database.

Each new customer gets a demo account with two orders and a subscription, so a fresh
deployment has something to talk about. There is one action of every decision type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.actions import ActionContext, ActionError, DecisionType, action

CATALOG = {"coffee beans": 1800, "grinder": 8900, "mug": 1200, "filter papers": 500}
DAY = 86400.0


async def install(db: Any) -> None:
    """The shop's tables, through its own numbered migrations (``shop_migrations/``)."""
    await db.migrate_module("shop", Path(__file__).with_name("shop_migrations"))


async def _ensure_account(ctx: ActionContext, tx: Any) -> None:
    row = await tx.fetchone(
        "SELECT deleted_at FROM shop_accounts WHERE discord_user_id = ?", (ctx.discord_user_id,)
    )
    if row is not None:
        if row["deleted_at"] is not None:
            raise ActionError("this account was deleted")
        return
    uid = ctx.discord_user_id
    await tx.execute(
        "INSERT INTO shop_accounts (discord_user_id, email, created_at) VALUES (?, ?, ?)",
        (uid, f"customer{uid % 10000}@example.com", ctx.now),
    )
    for item, qty, status, age in (
        ("coffee beans", 2, "delivered", 12),
        ("grinder", 1, "shipped", 2),
    ):
        await tx.execute(
            "INSERT INTO shop_orders (discord_user_id, item, quantity, total_cents, status,"
            " address, placed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                uid,
                item,
                qty,
                CATALOG[item] * qty,
                status,
                "1 Example Street, Springfield",
                ctx.now - age * DAY,
            ),
        )
    await tx.execute(
        "INSERT INTO shop_subscriptions (discord_user_id, plan, status, renews_at) VALUES (?, ?,"
        " ?, ?)",
        (uid, "monthly beans", "active", ctx.now + 14 * DAY),
    )


def _money(cents: int) -> str:
    return f"${cents / 100:.2f}"


async def _order(ctx: ActionContext, tx: Any, order_id: int) -> Any:
    await _ensure_account(ctx, tx)
    row = await tx.fetchone(
        "SELECT * FROM shop_orders WHERE id = ? AND discord_user_id = ?",
        (order_id, ctx.discord_user_id),
    )
    if row is None:
        raise ActionError(f"order {order_id} is not one of this customer's orders")
    return row


def _order_dict(row: Any) -> dict[str, Any]:
    return {
        "order_id": row["id"],
        "item": row["item"],
        "quantity": row["quantity"],
        "total": _money(row["total_cents"]),
        "refunded": _money(row["refunded_cents"]),
        "status": row["status"],
        "address": row["address"],
    }


@action(
    "informational",
    "Show the customer's account: email, preferences, store credit.",
    {"type": "object", "properties": {}, "additionalProperties": False},
)
async def get_account(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Show the account"""
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        row = await tx.fetchone(
            "SELECT * FROM shop_accounts WHERE discord_user_id = ?", (ctx.discord_user_id,)
        )
    return {
        "email": row["email"],
        "email_updates": bool(row["email_updates"]),
        "store_credit": _money(row["store_credit_cents"]),
        "discount_percent": row["discount_percent"],
    }


@action(
    "informational",
    "List the customer's orders with their status.",
    {"type": "object", "properties": {}, "additionalProperties": False},
)
async def list_orders(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """List orders"""
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        rows = await tx.fetchall(
            "SELECT * FROM shop_orders WHERE discord_user_id = ? ORDER BY id",
            (ctx.discord_user_id,),
        )
    return {"orders": [_order_dict(r) for r in rows]}


@action(
    "informational",
    "Get the status of one of the customer's orders.",
    {
        "type": "object",
        "properties": {"order_id": {"type": "integer", "minimum": 1}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
)
async def get_order_status(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Look up an order"""
    async with ctx.db.transaction() as tx:
        row = await _order(ctx, tx, params["order_id"])
    return _order_dict(row)


@action(
    "preference",
    "Turn the customer's email updates on or off.",
    {
        "type": "object",
        "properties": {"email_updates": {"type": "boolean"}},
        "required": ["email_updates"],
        "additionalProperties": False,
    },
)
async def update_preferences(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Change email updates"""
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        await tx.execute(
            "UPDATE shop_accounts SET email_updates = ? WHERE discord_user_id = ?",
            (int(params["email_updates"]), ctx.discord_user_id),
        )
    return {"email_updates": params["email_updates"]}


async def _order_total(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"total": CATALOG[params["item"]] * params["quantity"] / 100}


@action(
    "transactional",
    f"Place a new order. Items: {', '.join(CATALOG)}.",
    {
        "type": "object",
        "properties": {
            "item": {"type": "string", "enum": list(CATALOG)},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 20},
            "address": {"type": "string", "minLength": 5, "maxLength": 200},
        },
        "required": ["item", "quantity", "address"],
        "additionalProperties": False,
    },
    preview=_order_total,
)
async def place_order(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Place an order"""
    total = CATALOG[params["item"]] * params["quantity"]
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        order_id = await tx.insert(
            "INSERT INTO shop_orders (discord_user_id, item, quantity, total_cents, status,"
            " address, placed_at) VALUES (?, ?, ?, ?, 'processing', ?, ?)",
            (
                ctx.discord_user_id,
                params["item"],
                params["quantity"],
                total,
                params["address"],
                ctx.now,
            ),
        )
    return {"order_id": order_id, "total": _money(total), "status": "processing"}


@action(
    "transactional",
    "Change the delivery address of an order that has not shipped yet.",
    {
        "type": "object",
        "properties": {
            "order_id": {"type": "integer", "minimum": 1},
            "address": {"type": "string", "minLength": 5, "maxLength": 200},
        },
        "required": ["order_id", "address"],
        "additionalProperties": False,
    },
)
async def change_delivery_address(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Change a delivery address"""
    async with ctx.db.transaction() as tx:
        row = await _order(ctx, tx, params["order_id"])
        if row["status"] not in ("processing",):
            raise ActionError(
                f"order {row['id']} is already {row['status']}; the address can't change"
            )
        await tx.execute(
            "UPDATE shop_orders SET address = ? WHERE id = ?", (params["address"], row["id"])
        )
    return {"order_id": row["id"], "address": params["address"]}


@action(
    "financial",
    "Refund part or all of an order to the customer's card.",
    {
        "type": "object",
        "properties": {
            "order_id": {"type": "integer", "minimum": 1},
            "amount": {"type": "number", "exclusiveMinimum": 0},
            "reason": {"type": "string", "maxLength": 500},
        },
        "required": ["order_id", "amount", "reason"],
        "additionalProperties": False,
    },
)
async def issue_refund(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Refund an order"""
    cents = round(params["amount"] * 100)
    async with ctx.db.transaction() as tx:
        row = await _order(ctx, tx, params["order_id"])
        if row["refunded_cents"] + cents > row["total_cents"]:
            raise ActionError(
                f"refund of {_money(cents)} exceeds what is left on order {row['id']}"
                f" ({_money(row['total_cents'] - row['refunded_cents'])})"
            )
        await tx.execute(
            "UPDATE shop_orders SET refunded_cents = refunded_cents + ? WHERE id = ?",
            (cents, row["id"]),
        )
    return {"order_id": row["id"], "refunded": _money(cents)}


@action(
    "financial",
    "Give the customer a discount on future orders, in percent.",
    {
        "type": "object",
        "properties": {
            "percent": {"type": "integer", "minimum": 1, "maximum": 100},
            "reason": {"type": "string", "maxLength": 500},
        },
        "required": ["percent", "reason"],
        "additionalProperties": False,
    },
)
async def apply_discount(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Give a discount"""
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        await tx.execute(
            "UPDATE shop_accounts SET discount_percent = ? WHERE discord_user_id = ?",
            (params["percent"], ctx.discord_user_id),
        )
    return {"discount_percent": params["percent"]}


@action(
    "legal_medical",
    "Ask a specialist about health, allergy, safety or legal questions about our products. "
    "Never answer such questions yourself.",
    {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "enum": ["health", "allergy", "safety", "legal"]},
            "question": {"type": "string", "minLength": 3, "maxLength": 2000},
        },
        "required": ["topic", "question"],
        "additionalProperties": False,
    },
)
async def request_specialist_advice(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Ask a specialist"""
    async with ctx.db.transaction() as tx:
        request_id = await tx.insert(
            "INSERT INTO shop_advice_requests (discord_user_id, topic, question, created_at) VALUES"
            " (?, ?, ?, ?)",
            (ctx.discord_user_id, params["topic"], params["question"], ctx.now),
        )
    return {"request_id": request_id, "status": "recorded for a specialist"}


@action(
    "destructive",
    "Cancel one of the customer's subscriptions.",
    {
        "type": "object",
        "properties": {"subscription_id": {"type": "integer", "minimum": 1}},
        "required": ["subscription_id"],
        "additionalProperties": False,
    },
)
async def cancel_subscription(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Cancel a subscription"""
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        changed = await tx.execute(
            "UPDATE shop_subscriptions SET status = 'cancelled'"
            " WHERE id = ? AND discord_user_id = ? AND status = 'active'",
            (params["subscription_id"], ctx.discord_user_id),
        )
    if not changed:
        raise ActionError(
            f"subscription {params['subscription_id']} is not an active subscription of this"
            " customer"
        )
    return {"subscription_id": params["subscription_id"], "status": "cancelled"}


@action(
    "destructive",
    "Delete the customer's account and personal data for good.",
    {"type": "object", "properties": {}, "additionalProperties": False},
)
async def delete_account(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the account"""
    async with ctx.db.transaction() as tx:
        await _ensure_account(ctx, tx)
        await tx.execute(
            "UPDATE shop_accounts SET deleted_at = ?, email = '' WHERE discord_user_id = ?",
            (ctx.now, ctx.discord_user_id),
        )
        await tx.execute(
            "UPDATE shop_subscriptions SET status = 'cancelled' WHERE discord_user_id = ?",
            (ctx.discord_user_id,),
        )
    return {"deleted": True}


ACTIONS = [
    get_account,
    list_orders,
    get_order_status,
    update_preferences,
    place_order,
    change_delivery_address,
    issue_refund,
    apply_discount,
    request_specialist_advice,
    cancel_subscription,
    delete_account,
]
DecisionTypes = {a.name: a.decision_type for a in ACTIONS}
assert set(DecisionTypes.values()) == set(DecisionType), (
    "the example shop covers every decision type"
)
