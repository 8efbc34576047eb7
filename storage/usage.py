"""What Claude calls used: one row per call (tokens by kind, model, what it served), summed for
the summary and for a customer's daily budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Store

TOKENS = ("input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens")


@dataclass(frozen=True)
class Spent:
    """Tokens of one model over some calls."""

    model: str
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    calls: int


@dataclass(frozen=True)
class UsageRows:
    """The period's usage: by model and purpose, and by conversation (with whether a person took
    part), for the summary to price."""

    by_purpose: list[tuple[str, Spent]]
    by_conversation: list[tuple[int, bool, Spent]]  # (conversation, a ticket was opened, spent)


def _spent(model: str, counts: Any) -> Spent:
    """The four token sums and the number of calls, as a query row gives them."""
    tokens = [int(v or 0) for v in counts]
    return Spent(model, tokens[0], tokens[1], tokens[2], tokens[3], tokens[4])


class UsageStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def record(
        self,
        *,
        purpose: str,
        model: str,
        usage: Mapping[str, object],
        now: float,
        customer_id: int | None = None,
        conversation_id: int | None = None,
        ticket_id: int | None = None,
    ) -> None:
        """One call's usage as the API reported it (the cache write: its
        ``cache_creation_input_tokens``)."""

        def count(name: str) -> int:
            value = usage.get(name)
            return int(value) if isinstance(value, int | float) else 0

        await self.db.execute(
            "INSERT INTO llm_usage (at, purpose, model, customer_id, conversation_id, ticket_id,"
            " input_tokens, cache_write_tokens, cache_read_tokens, output_tokens)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                purpose,
                model,
                customer_id,
                conversation_id,
                ticket_id,
                count("input_tokens"),
                count("cache_creation_input_tokens"),
                count("cache_read_input_tokens"),
                count("output_tokens"),
            ),
        )

    async def customer_tokens(self, customer_id: int, since: float) -> int:
        """Every token the customer's calls used since then (input of all kinds and output)."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(input_tokens + cache_write_tokens + cache_read_tokens +"
            " output_tokens), 0) FROM llm_usage WHERE customer_id = ? AND at >= ?",
            (customer_id, since),
        )
        return int(row[0]) if row else 0

    async def rows(self, since: float, until: float) -> UsageRows:
        def read(c: Connection) -> UsageRows:
            sums = ", ".join(f"SUM({t})" for t in TOKENS)
            by_purpose = [
                (r[0], _spent(r[1], r[2:7]))
                for r in c.execute(
                    f"SELECT purpose, model, {sums}, COUNT(*) FROM llm_usage WHERE at >= ? AND"
                    " at <= ? GROUP BY purpose, model ORDER BY purpose, model",
                    (since, until),
                ).fetchall()
            ]
            by_conversation = [
                (int(r[0]), bool(r[1]), _spent(r[2], r[3:8]))
                for r in c.execute(
                    "SELECT u.conversation_id, EXISTS (SELECT 1 FROM tickets t WHERE"
                    f" t.conversation_id = u.conversation_id), u.model, {sums}, COUNT(*)"
                    " FROM llm_usage u WHERE u.at >= ? AND u.at <= ? AND u.conversation_id IS"
                    " NOT NULL GROUP BY u.conversation_id, u.model",
                    (since, until),
                ).fetchall()
            ]
            return UsageRows(by_purpose, by_conversation)

        return await self.db.read(read)
