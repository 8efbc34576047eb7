"""Small statements that whole changes share, run inside the caller's transaction
(``Database.run``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.db import Connection, Store
from storage.records import DeskOp

TX_RULE = """The rule for a function run as one transaction (``fn(tx)`` given to ``TicketStore.run``
or ``CodeStore.run``, or a ``write(c)`` given to ``Database.run``): it is synchronous and holds the
write lock while it runs, so it only reads and writes through ``tx`` (or ``c``) and returns what the
caller needs as its result (a value, a tuple, a small frozen record: never by filling a list or
variable of the caller). It touches neither the event loop nor Discord: no ``await``, no
``asyncio``, no kicking a delivery, no scheduling; the caller does those after the commit, from the
result. On SQLite it runs on aiosqlite's thread, where a call into the loop fails; on PostgreSQL it
runs in a greenlet on the loop's own thread, where it would seem to work and break the write lock's
order. tests/test_layout.py checks it."""


class Tx:
    """The statements of one transaction that core's decision runs in (``TicketStore.run``,
    ``CodeStore.run``): the connection, the transaction's time, and what every such transaction may
    do. See ``TX_RULE``."""

    def __init__(self, c: Connection, now: float) -> None:
        self.c = c
        self.now = now

    def audit(
        self, actor: str, action: str, subject: str | None = None, detail: Any = None
    ) -> None:
        audit_sql(self.c, self.now, actor, action, subject, detail)


def to_json(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False, default=str) if value is not None else None


def audit_sql(
    c: Connection,
    at: float,
    actor: str,
    action: str,
    subject: str | None = None,
    detail: Any = None,
) -> None:
    """Append an audit row inside the caller's transaction (the audit table refuses updates and
    deletes)."""
    c.execute(
        "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
        (at, actor, action, subject, to_json(detail)),
    )


async def audit(
    db: Store, at: float, actor: str, action: str, subject: str | None = None, detail: Any = None
) -> None:
    """An audit row on its own (an event that changes nothing else, e.g. a stalled Discord
    client)."""
    await db.run(lambda c: audit_sql(c, at, actor, action, subject, detail))


def enqueue_sql(
    c: Connection,
    customer_id: int,
    turn_id: int | None,
    chunks: Sequence[str],
    now: float,
    *,
    buttons: list[dict[str, Any]] | None = None,
    file: tuple[str, bytes] | None = None,
) -> None:
    """Owe the customer these DMs; written in the caller's transaction, delivered by the outbox in
    id order.

    ``buttons`` (e.g. Yes / No for a confirmation) and ``file`` (name, content) go with the last
    chunk.
    """
    last = len(chunks) - 1
    # An agent (MCP) has no DMs: it reads its tickets' results instead, so nothing is owed to it.
    c.executemany(
        "INSERT INTO outbox (customer_id, turn_id, content, buttons, file_name, file_data,"
        " next_attempt_at, created_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1"
        " FROM customers WHERE id = ? AND agent_name IS NOT NULL)",
        [
            (
                customer_id,
                turn_id,
                chunk,
                to_json(buttons) if i == last and buttons else None,
                file[0] if i == last and file else None,
                file[1] if i == last and file else None,
                now,
                now,
                customer_id,
            )
            for i, chunk in enumerate(chunks)
        ],
    )


def customer_sql(c: Connection, discord_id: int, display_name: str, now: float) -> Any:
    """A Discord user's customer row, made if they never wrote (an operator blocks or contacts them
    first)."""
    return c.execute(
        "INSERT INTO customers (discord_id, display_name, created_at) VALUES (?, ?, ?) ON CONFLICT"
        " (discord_id) DO UPDATE SET display_name = customers.display_name RETURNING *",
        (discord_id, display_name, now),
    ).fetchone()


def takeover_ticket_sql(c: Connection, customer_id: int) -> int | None:
    """The ticket whose operator (or the no-AI relay) is talking with this customer, if any."""
    row = c.execute(
        "SELECT id FROM tickets WHERE customer_id = ? AND takeover_by IS NOT NULL AND status !="
        " 'closed' ORDER BY id DESC LIMIT 1",
        (customer_id,),
    ).fetchone()
    return row[0] if row else None


def desk_post_sql(c: Connection, ticket_id: int, op: DeskOp, now: float, content: str = "") -> None:
    """Queue a post to the staff desk for this ticket (delivered in order after the transaction
    commits; a long text is split when it is posted)."""
    c.execute(
        "INSERT INTO desk_outbox (ticket_id, op, content, next_attempt_at, created_at) VALUES (?,"
        " ?, ?, ?, ?)",
        (ticket_id, op, content, now, now),
    )
