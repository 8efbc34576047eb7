"""The webhook outbox: one row per settled outcome of an agent's ticket that has a notify_url, kept
until delivered (or given up on), so nothing is lost across restarts and each outcome has one id
the receiver can deduplicate on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Store


@dataclass(frozen=True)
class Delivery:
    id: int
    ticket_id: int
    outcome: str  # the result's status: answered, approved, denied, expired, timed_out...
    agent: str
    url: str
    body: str
    attempts: int
    next_attempt_at: float

    @property
    def webhook_id(self) -> str:
        """The id receivers deduplicate on: one per ticket and outcome."""
        return f"handoff-ticket-{self.ticket_id}-{self.outcome}"

    @classmethod
    def from_row(cls, row: Any) -> Delivery:
        return cls(
            row["id"],
            row["ticket_id"],
            row["outcome"],
            row["agent"],
            row["url"],
            row["body"],
            row["attempts"],
            row["next_attempt_at"],
        )


WAITING = "delivered_at IS NULL AND failed_at IS NULL"


class WebhookStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def enqueue(
        self, ticket_id: int, outcome: str, agent: str, url: str, body: str, now: float
    ) -> bool:
        """The outcome's delivery, once: False when it was queued before."""

        def write(c: Connection) -> bool:
            return bool(
                c.execute(
                    "INSERT INTO webhook_outbox (ticket_id, outcome, agent, url, body, created_at,"
                    " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ticket_id,"
                    " outcome) DO NOTHING",
                    (ticket_id, outcome, agent, url, body, now, now),
                ).rowcount
            )

        return await self.db.run(write)

    async def waiting(self, ticket_id: int) -> list[Delivery]:
        rows = await self.db.fetchall(
            f"SELECT * FROM webhook_outbox WHERE ticket_id = ? AND {WAITING} ORDER BY id",
            (ticket_id,),
        )
        return [Delivery.from_row(r) for r in rows]

    async def waiting_tickets(self) -> list[tuple[int, float]]:
        """(ticket, when its first waiting delivery is due) of every ticket with deliveries left."""
        rows = await self.db.fetchall(
            f"SELECT ticket_id, MIN(next_attempt_at) FROM webhook_outbox WHERE {WAITING}"
            " GROUP BY ticket_id"
        )
        return [(r[0], r[1]) for r in rows]

    async def delivered(self, delivery_id: int, now: float) -> None:
        await self.db.execute(
            "UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1, last_error ="
            " NULL WHERE id = ?",
            (now, delivery_id),
        )

    async def retry_later(self, delivery_id: int, next_at: float, error: str) -> None:
        await self.db.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error ="
            " ? WHERE id = ?",
            (next_at, error[:500], delivery_id),
        )

    async def given_up(self, delivery_id: int, now: float, error: str) -> None:
        await self.db.execute(
            "UPDATE webhook_outbox SET attempts = attempts + 1, failed_at = ?, last_error = ?"
            " WHERE id = ?",
            (now, error[:500], delivery_id),
        )

    async def settled_with_url(self, since: float) -> list[int]:
        """Agent tickets opened since ``since`` with a notify_url that may have an outcome: checked
        at start, in case the bot stopped between a decision and its queueing."""
        rows = await self.db.fetchall(
            "SELECT id FROM tickets WHERE notify_url IS NOT NULL AND created_at >= ? AND (status"
            " != 'open' OR answer IS NOT NULL OR timed_out_at IS NOT NULL)",
            (since,),
        )
        return [r[0] for r in rows]
