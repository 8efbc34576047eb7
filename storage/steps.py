"""Pending steps the customer decides (confirmations; code requests share the result record): whole
changes.

Each method is one transaction: the conditional update that decides a step once, its audit row, and
what the customer is owed, together. The words the customer reads come from core as arguments
(``StepTexts``): storage decides nothing about wording.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.conversations import NewTurn, insert_turns_sql, set_status_sql, tell_customer_sql
from storage.db import Connection, Store
from storage.sql import audit_sql, enqueue_sql

# audit subject prefix -> table
STEP_TABLES = {"confirmation": "confirmations", "mfa": "mfa_challenges"}


@dataclass(frozen=True)
class StepRequest:
    """An action waiting for the customer (a confirmation or a code): who, where, and what would
    run."""

    id: int
    customer_id: int
    discord_id: int
    conversation_id: int
    action_name: str
    action_params: dict[str, Any]
    expires_at: float


@dataclass(frozen=True)
class Confirmation(StepRequest):
    strategy: str  # confirm (a yes) or confirm_details (the exact details)
    # the Discord message that first showed the customer the question
    prompt_message_id: int | None = None
    prompt_sent_at: float | None = None  # when it was delivered (None: not yet)
    created_at: float = 0.0

    @classmethod
    def from_row(cls, row: Any) -> Confirmation:
        return cls(
            row["id"],
            row["customer_id"],
            row["discord_id"],
            row["conversation_id"],
            row["action_name"],
            json.loads(row["action_params"]),
            row["expires_at"],
            row["strategy"],
            row["prompt_message_id"],
            row["prompt_sent_at"],
            row["created_at"],
        )

    def shown_before(self, message_id: int | None, stored_at: float) -> bool | None:
        """Whether the customer had the question when they sent this message (stored at
        ``stored_at``): it was delivered before it (Discord's ids are times; a message without one:
        by when it was stored). None: not known yet, the message came after the question was made
        and its delivery is not recorded yet."""
        if self.prompt_sent_at is not None:
            if message_id is not None and self.prompt_message_id is not None:
                return message_id > self.prompt_message_id
            return stored_at > self.prompt_sent_at
        return False if stored_at <= self.created_at else None


# (what the customer reads, the note Claude reads in the history) for a step that just ended.
StepTexts = Callable[[StepRequest], tuple[str, str]]


class Decided(enum.StrEnum):
    MISSING = "missing"
    NOT_YOURS = "not yours"  # someone other than the customer who was asked
    ALREADY = "already"  # decided before (status says how)
    EXPIRED = "expired"  # past its time: expired now, the customer told
    CONFIRMED = "confirmed"  # run it (once: this call won)
    CANCELLED = "cancelled"  # the customer told


@dataclass(frozen=True)
class Decision:
    outcome: Decided
    confirmation: Confirmation | None = None
    status: str = ""  # with ALREADY: the status it had


_CONFIRMATION = (
    "SELECT f.*, c.discord_id FROM confirmations f JOIN customers c ON c.id = f.customer_id"
)


def tell_step_sql(c: Connection, request: StepRequest, texts: tuple[str, str], now: float) -> None:
    text, note = texts
    tell_customer_sql(
        c, request.customer_id, request.conversation_id, text, NewTurn("system", note), now
    )


class StepStore:
    """What every kind of customer step shares."""

    def __init__(self, db: Store) -> None:
        self.db = db

    async def record_result(
        self,
        subject: str,
        request: StepRequest,
        outcome: Any,
        executed: bool,
        texts: tuple[str, str],
        now: float,
    ) -> None:
        """The action of a decided step ran (``executed``) or failed: keep its result, audit,
        tell."""
        table = STEP_TABLES[subject]

        def write(c: Connection) -> None:
            c.execute(
                f"UPDATE {table} SET result = ? WHERE id = ?",
                (json.dumps(outcome, ensure_ascii=False, default=str), request.id),
            )
            audit_sql(
                c,
                now,
                "system",
                "action_executed" if executed else "action_failed",
                f"{subject}:{request.id}",
                {"action": request.action_name, "result": outcome},
            )
            tell_step_sql(c, request, texts, now)

        await self.db.run(write)


class ConfirmationStore(StepStore):
    async def create(
        self,
        *,
        customer_id: int,
        conversation_id: int,
        action_name: str,
        params: dict[str, Any],
        strategy: str,
        level: str,
        rules: Sequence[str],
        rule: str,
        details: str,
        tool_use_id: str | None,
        expires_at: float,
        now: float,
        prompt: Sequence[str],
    ) -> int:
        """A pending confirmation, audited, with its prompt and buttons owed to the customer."""

        def write(c: Connection) -> int:
            confirmation_id = c.execute(
                "INSERT INTO confirmations (customer_id, conversation_id, action_name,"
                " action_params, strategy, risk_level, rules, details, tool_use_id, expires_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    customer_id,
                    conversation_id,
                    action_name,
                    json.dumps(params, ensure_ascii=False),
                    strategy,
                    level,
                    json.dumps(list(rules)),
                    details,
                    tool_use_id,
                    expires_at,
                    now,
                ),
            ).fetchone()[0]
            audit_sql(
                c,
                now,
                "agent",
                "confirmation_requested",
                f"confirmation:{confirmation_id}",
                {"action": action_name, "strategy": strategy, "rule": rule},
            )
            # Owed in the same transaction: a crash after this never leaves a confirmation the
            # customer can't see.
            enqueue_sql(
                c,
                customer_id,
                None,
                prompt,
                now,
                buttons=[{"kind": "confirm", "id": confirmation_id, "style": strategy}],
            )
            return confirmation_id

        return await self.db.run(write)

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        """(job id, expiry) of every confirmation still waiting for the customer."""
        rows = await self.db.fetchall(
            "SELECT 'confirmation:' || id, expires_at FROM confirmations WHERE status = 'pending'"
        )
        return [(r[0], r[1]) for r in rows]

    async def pending_for(self, customer_id: int) -> list[Confirmation]:
        """The customer's pending confirmations, newest first (a typed yes or no answers one
        alone)."""
        rows = await self.db.fetchall(
            f"{_CONFIRMATION} WHERE f.customer_id = ? AND f.status = 'pending' ORDER BY f.id DESC",
            (customer_id,),
        )
        return [Confirmation.from_row(row) for row in rows]

    async def ask_again(
        self,
        confirmation: Confirmation,
        turn_ids: Sequence[int],
        text: str,
        now: float,
        reply_chars: int,
        *,
        repeat: bool = True,
    ) -> None:
        """An unclear answer: it is used up, and the question asked again (with its buttons).
        ``repeat`` False: a typed answer while several questions wait; ``text`` points at the
        buttons already shown."""
        buttons = (
            [{"kind": "confirm", "id": confirmation.id, "style": confirmation.strategy}]
            if repeat
            else None
        )

        def write(c: Connection) -> None:
            set_status_sql(c, turn_ids, "answered")
            if repeat:
                c.execute(
                    "UPDATE confirmations SET asked_times = asked_times + 1 WHERE id = ?",
                    (confirmation.id,),
                )
            [turn_id] = insert_turns_sql(
                c,
                confirmation.conversation_id,
                confirmation.customer_id,
                [NewTurn("assistant", text)],
                now,
                after_turn_id=turn_ids[-1],
            )
            enqueue_sql(c, confirmation.customer_id, turn_id, [text], now, buttons=buttons)
            audit_sql(
                c,
                now,
                f"customer:{confirmation.customer_id}",
                "confirmation_unclear" if repeat else "confirmation_typed_ambiguous",
                f"confirmation:{confirmation.id}",
                {"reply_chars": reply_chars},
            )

        await self.db.run(write)

    def _expire_sql(
        self, c: Connection, confirmation: Confirmation, now: float, on_expire: StepTexts
    ) -> bool:
        won = c.execute(
            "UPDATE confirmations SET status = 'expired', decided_at = ? WHERE id = ?"
            " AND status = 'pending'",
            (now, confirmation.id),
        ).rowcount
        if won:
            audit_sql(
                c,
                now,
                "system",
                "confirmation_expired",
                f"confirmation:{confirmation.id}",
                {"action": confirmation.action_name},
            )
            tell_step_sql(c, confirmation, on_expire(confirmation), now)
        return bool(won)

    async def decide(
        self,
        confirmation_id: int,
        yes: bool,
        *,
        via: str,
        by_discord_id: int | None,
        answered_turns: Sequence[int],
        now: float,
        on_cancel: StepTexts,
        on_expire: StepTexts,
    ) -> Decision:
        """Confirm or cancel, once (a conditional update), audited; a cancellation or an expiry is
        told."""

        def write(c: Connection) -> Decision:
            row = c.execute(f"{_CONFIRMATION} WHERE f.id = ?", (confirmation_id,)).fetchone()
            if row is None:
                return Decision(Decided.MISSING)
            confirmation = Confirmation.from_row(row)
            if by_discord_id is not None and by_discord_id != confirmation.discord_id:
                return Decision(Decided.NOT_YOURS, confirmation)
            if answered_turns:
                set_status_sql(c, answered_turns, "answered")
            if row["status"] != "pending":
                return Decision(Decided.ALREADY, confirmation, row["status"])
            if confirmation.expires_at <= now:
                self._expire_sql(c, confirmation, now, on_expire)
                return Decision(Decided.EXPIRED, confirmation)
            status = Decided.CONFIRMED if yes else Decided.CANCELLED
            c.execute(
                "UPDATE confirmations SET status = ?, decided_at = ?, decided_via = ? WHERE id = ?"
                " AND status = 'pending'",
                (status.value, now, via, confirmation_id),
            )
            audit_sql(
                c,
                now,
                f"customer:{confirmation.customer_id}",
                f"confirmation_{status.value}",
                f"confirmation:{confirmation_id}",
                {"via": via, "action": confirmation.action_name},
            )
            if not yes:
                tell_step_sql(c, confirmation, on_cancel(confirmation), now)
            return Decision(status, confirmation)

        return await self.db.run(write)

    async def expire_due(self, now: float, on_expire: StepTexts) -> list[int]:
        """Expire every confirmation past its time and tell its customer; returns those
        customers."""

        def write(c: Connection) -> list[int]:
            rows = c.execute(
                f"{_CONFIRMATION} WHERE f.status = 'pending' AND f.expires_at <= ?", (now,)
            ).fetchall()
            return [
                f.customer_id
                for f in map(Confirmation.from_row, rows)
                if self._expire_sql(c, f, now, on_expire)
            ]

        return await self.db.run(write)
