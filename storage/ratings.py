"""Customers' ratings (1-5 and an optional comment): once per ticket (``t12``) or AI-only
conversation (``c5``)."""

from __future__ import annotations

import enum

from storage.db import Connection, Store
from storage.sql import audit_sql


class Rated(enum.StrEnum):
    SAVED = "saved"
    ALREADY = "already"  # this ticket or conversation was rated before: the first rating stands
    NOT_YOURS = "not yours"
    UNKNOWN = "unknown"


class RatingStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def rate(self, subject: str, discord_id: int, score: int, now: float) -> Rated:
        def write(c: Connection) -> Rated:
            kind, number = subject[0], int(subject[1:])
            row = c.execute(
                (
                    "SELECT c.id, c.discord_id FROM customers c JOIN tickets t ON t.customer_id ="
                    " c.id WHERE t.id = ?"
                    if kind == "t"
                    else (
                        "SELECT c.id, c.discord_id FROM customers c JOIN conversations v"
                        " ON v.customer_id = c.id WHERE v.id = ?"
                    )
                ),
                (number,),
            ).fetchone()
            if row is None:
                return Rated.UNKNOWN
            if row["discord_id"] != discord_id:
                return Rated.NOT_YOURS
            saved = c.execute(
                "INSERT INTO ratings (subject, customer_id, score, by_person, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (subject) DO NOTHING",
                (subject, row["id"], score, int(kind == "t"), now),
            ).rowcount
            if not saved:
                return Rated.ALREADY
            audit_sql(c, now, f"customer:{row['id']}", "rated", subject, {"score": score})
            return Rated.SAVED

        return await self.db.run(write)

    async def comment(self, subject: str, discord_id: int, text: str) -> bool:
        """The comment of a rating this person gave, once."""
        return bool(
            await self.db.execute(
                "UPDATE ratings SET comment = ? WHERE subject = ? AND comment IS NULL AND"
                " customer_id = (SELECT id FROM customers WHERE discord_id = ?)",
                (text, subject, discord_id),
            )
        )
