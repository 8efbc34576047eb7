"""The case at a glance on an approval ticket: what the desk knows of this customer and this
action, counted from its own tables (never asked of Claude)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Connection, Store

DAY = 86400.0


@dataclass(frozen=True)
class CaseFacts:
    earlier: dict[str, int]  # this customer's other tickets, by status
    same_action: dict[str, int]  # this customer's earlier requests of this action, by status
    same_action_30d: int  # of which in the last 30 days
    everyone_90d: dict[str, int]  # this action for every customer in the last 90 days, by status
    ratings: list[int]  # this customer's ratings, oldest first


class CaseStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def facts(
        self, ticket_id: int, customer_id: int, action: str | None, created_at: float
    ) -> CaseFacts:
        def read(c: Connection) -> CaseFacts:
            earlier = dict(
                c.execute(
                    "SELECT status, COUNT(*) FROM tickets WHERE customer_id = ? AND id < ?"
                    " GROUP BY status",
                    (customer_id, ticket_id),
                ).fetchall()
            )
            same: dict[str, int] = {}
            recent = 0
            everyone: dict[str, int] = {}
            if action:
                for status, at in c.execute(
                    "SELECT status, created_at FROM tickets WHERE customer_id = ? AND id < ? AND"
                    " action_name = ?",
                    (customer_id, ticket_id, action),
                ).fetchall():
                    same[status] = same.get(status, 0) + 1
                    recent += at >= created_at - 30 * DAY
                everyone = dict(
                    c.execute(
                        "SELECT status, COUNT(*) FROM tickets WHERE action_name = ? AND id != ?"
                        " AND created_at >= ? GROUP BY status",
                        (action, ticket_id, created_at - 90 * DAY),
                    ).fetchall()
                )
            ratings = [
                int(r[0])
                for r in c.execute(
                    "SELECT score FROM ratings WHERE customer_id = ? ORDER BY id", (customer_id,)
                ).fetchall()
            ]
            return CaseFacts(
                {k: int(v) for k, v in earlier.items()},
                same,
                int(recent),
                {k: int(v) for k, v in everyone.items()},
                ratings,
            )

        return await self.db.read(read)
