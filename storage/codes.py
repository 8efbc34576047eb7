"""One-time codes: authenticator secrets (sealed by core before they get here), code requests, wrong
codes.

Checking a code must be one transaction (read the secret, decide, move the request once, use up
the step, count a wrong code), and the check itself needs the key, which storage never sees. So
``CodeStore.run(fn)`` runs core's ``fn(tx)`` in one transaction, and ``CodeTx`` holds every
statement it may use: the SQL stays here, the decisions in ``core/steps/codes.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.db import Connection, Store
from storage.sql import Tx, audit_sql, enqueue_sql
from storage.steps import StepRequest, tell_step_sql

T = TypeVar("T")
HOUR = 3600.0
_CHALLENGE = (
    "SELECT h.*, c.discord_id FROM mfa_challenges h JOIN customers c ON c.id = h.customer_id"
)


@dataclass(frozen=True)
class Challenge(StepRequest):
    """A request for a one-time code before an action runs."""

    wrong: int
    status: str = "pending"

    @classmethod
    def from_row(cls, row: Any) -> Challenge:
        return cls(
            row["id"],
            row["customer_id"],
            row["discord_id"],
            row["conversation_id"],
            row["action_name"],
            json.loads(row["action_params"]),
            row["expires_at"],
            row["wrong"],
            row["status"],
        )


@dataclass(frozen=True)
class SecretRow:
    customer_id: int
    secret: str | None  # sealed; None until the first setup is confirmed
    pending_secret: str | None  # sealed; a setup waiting for its first code
    last_step: int
    locked_at: float | None
    # asked to replace a confirmed setup: the next code is the current one's
    replace_asked_at: float | None = None
    # the current setup's code was right: a new setup may replace it
    replace_verified_at: float | None = None
    setup_expires_at: float | None = None  # the pending setup is abandoned after this

    def may_confirm_pending(self, now: float) -> bool:
        """A pending setup's first code may make it the customer's: a first setup, or a replacement
        that the current setup's code allowed; in both cases before it is abandoned."""
        if self.pending_secret is None or (
            self.setup_expires_at is not None and self.setup_expires_at <= now
        ):
            return False
        return self.secret is None or self.replace_verified_at is not None

    def replacing(self, now: float, window: float) -> bool:
        """Asked to replace the confirmed setup within ``window`` seconds: a code now is the current
        setup's."""
        return (
            self.secret is not None
            and self.replace_asked_at is not None
            and self.replace_asked_at > now - window
        )


@dataclass(frozen=True)
class SetupMessage:
    """A DM that shows a setup's key: deleted once that setup is confirmed, abandoned or reset."""

    customer_id: int
    channel_id: int
    message_id: int


def _setup_message(row: Any) -> SetupMessage | None:
    return SetupMessage(row[0], row[1], row[2]) if row is not None and row[2] is not None else None


def _secret(row: Any) -> SecretRow | None:
    return (
        SecretRow(
            row["customer_id"],
            row["secret"],
            row["pending_secret"],
            row["last_step"] or 0,
            row["locked_at"],
            row["replace_asked_at"],
            row["replace_verified_at"],
            row["setup_expires_at"],
        )
        if row
        else None
    )


class CodeTx(Tx):
    """The statements of one code transaction (see the module's docstring)."""

    def secret(self, customer_id: int) -> SecretRow | None:
        return _secret(
            self.c.execute(
                "SELECT * FROM mfa_secrets WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        )

    def secret_of(self, discord_id: int) -> SecretRow | None:
        return _secret(
            self.c.execute(
                "SELECT s.* FROM mfa_secrets s JOIN customers c ON c.id = s.customer_id"
                " WHERE c.discord_id = ?",
                (discord_id,),
            ).fetchone()
        )

    def customer_of(self, discord_id: int) -> int | None:
        row = self.c.execute(
            "SELECT id FROM customers WHERE discord_id = ?", (discord_id,)
        ).fetchone()
        return row[0] if row else None

    def newest_pending(self, customer_id: int) -> Challenge | None:
        row = self.c.execute(
            f"{_CHALLENGE} WHERE h.customer_id = ? AND h.status = 'pending' ORDER BY h.id DESC"
            " LIMIT 1",
            (customer_id,),
        ).fetchone()
        return Challenge.from_row(row) if row else None

    def all_pending(self, customer_id: int) -> list[Challenge]:
        rows = self.c.execute(
            f"{_CHALLENGE} WHERE h.customer_id = ? AND h.status = 'pending'", (customer_id,)
        )
        return [Challenge.from_row(r) for r in rows.fetchall()]

    def challenge(self, challenge_id: int) -> Challenge | None:
        row = self.c.execute(f"{_CHALLENGE} WHERE h.id = ?", (challenge_id,)).fetchone()
        return Challenge.from_row(row) if row else None

    def due(self) -> list[Challenge]:
        rows = self.c.execute(
            f"{_CHALLENGE} WHERE h.status = 'pending' AND h.expires_at <= ?", (self.now,)
        )
        return [Challenge.from_row(r) for r in rows.fetchall()]

    def passed(self, challenge: Challenge) -> bool:
        """The right code: the request passes, once (False when another code already passed it)."""
        return bool(
            self.c.execute(
                "UPDATE mfa_challenges SET status = 'passed', decided_at = ? WHERE id = ?"
                " AND status = 'pending'",
                (self.now, challenge.id),
            ).rowcount
        )

    def finish(
        self, challenge: Challenge, status: str, told: tuple[str, str] | None = None
    ) -> bool:
        """End a pending request (expired, failed, cancelled), once; audited, and told when
        ``told``."""
        won = self.c.execute(
            "UPDATE mfa_challenges SET status = ?, decided_at = ? WHERE id = ? AND status ="
            " 'pending'",
            (status, self.now, challenge.id),
        ).rowcount
        if won:
            audit_sql(
                self.c,
                self.now,
                "system",
                f"mfa_challenge_{status}",
                f"mfa:{challenge.id}",
                {"action": challenge.action_name},
            )
            if told is not None:
                tell_step_sql(self.c, challenge, told, self.now)
        return bool(won)

    def add_wrong(self, challenge: Challenge) -> None:
        self.c.execute("UPDATE mfa_challenges SET wrong = wrong + 1 WHERE id = ?", (challenge.id,))

    def count_failure(self, customer_id: int, per_hour: int) -> bool:
        """Count a wrong code toward the hourly limit; True when it now locks this person's
        codes."""
        self.c.execute(
            "INSERT INTO mfa_failures (customer_id, at) VALUES (?, ?)", (customer_id, self.now)
        )
        recent = self.c.execute(
            "SELECT COUNT(*) FROM mfa_failures WHERE customer_id = ? AND at > ?",
            (customer_id, self.now - HOUR),
        ).fetchone()[0]
        if recent < per_hour:
            return False
        self.c.execute(
            "UPDATE mfa_secrets SET locked_at = ?, updated_at = ? WHERE customer_id = ?",
            (self.now, self.now, customer_id),
        )
        audit_sql(
            self.c,
            self.now,
            "system",
            "mfa_locked",
            f"customer:{customer_id}",
            {"wrong_codes_last_hour": recent},
        )
        return True

    def use_step(self, customer_id: int, step: int) -> None:
        """A code was accepted: it, and every older one, can never be used again."""
        self.c.execute(
            "UPDATE mfa_secrets SET last_step = ?, updated_at = ? WHERE customer_id = ?",
            (step, self.now, customer_id),
        )

    def confirm_setup(self, customer_id: int, step: int) -> None:
        """The pending setup's first code was right: it becomes the customer's setup (its key's DM
        is then deleted: ``setup_messages_done``)."""
        self.c.execute(
            "UPDATE mfa_secrets SET secret = pending_secret, pending_secret = NULL, last_step = ?,"
            " enrolled_at = ?, updated_at = ?, replace_asked_at = NULL, replace_verified_at = NULL,"
            " setup_expires_at = NULL WHERE customer_id = ?",
            (step, self.now, self.now, customer_id),
        )

    def ask_replacement(self, customer_id: int) -> None:
        """An enrolled customer asks for a new setup: their next code must come from the current
        one."""
        self.c.execute(
            "UPDATE mfa_secrets SET replace_asked_at = ?, updated_at = ? WHERE customer_id = ?",
            (self.now, self.now, customer_id),
        )

    def replacement_verified(self, customer_id: int) -> None:
        self.c.execute(
            "UPDATE mfa_secrets SET replace_asked_at = NULL, replace_verified_at = ?, updated_at ="
            " ? WHERE customer_id = ?",
            (self.now, self.now, customer_id),
        )

    def remove_setup(self, customer_id: int) -> bool:
        """An operator's reset: no setup left (a DM still showing a key stays listed, to be
        deleted)."""
        return bool(
            self.c.execute(
                "UPDATE mfa_secrets SET secret = NULL, pending_secret = NULL, replace_asked_at ="
                " NULL, replace_verified_at = NULL, setup_expires_at = NULL, locked_at = NULL,"
                " updated_at = ? WHERE customer_id = ? AND (secret IS NOT NULL OR pending_secret IS"
                " NOT NULL)",
                (self.now, customer_id),
            ).rowcount
        )

    def abandoned_setups(self) -> list[int]:
        """Abandon pending setups past their time (and replacement requests never followed); returns
        the customers whose setup was abandoned."""
        rows = self.c.execute(
            "SELECT customer_id FROM mfa_secrets WHERE pending_secret IS NOT NULL"
            " AND setup_expires_at <= ?",
            (self.now,),
        ).fetchall()
        for row in rows:
            self.c.execute(
                "UPDATE mfa_secrets SET pending_secret = NULL, replace_verified_at = NULL,"
                " setup_expires_at = NULL, updated_at = ? WHERE customer_id = ?",
                (self.now, row[0]),
            )
        return [r[0] for r in rows]

    def unlock(self, customer_id: int) -> bool:
        """Codes unlocked, and the hour's wrong codes forgiven (or the next one would lock
        again)."""
        self.c.execute("DELETE FROM mfa_failures WHERE customer_id = ?", (customer_id,))
        return bool(
            self.c.execute(
                "UPDATE mfa_secrets SET locked_at = NULL WHERE customer_id = ? AND locked_at IS NOT"
                " NULL",
                (customer_id,),
            ).rowcount
        )

    def tell(self, customer_id: int, text: str) -> None:
        """Owe the customer a short message (no turn: codes and setups stay out of Claude's
        history)."""
        enqueue_sql(self.c, customer_id, None, [text], self.now)


class CodeStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def run(self, fn: Callable[[CodeTx], T], now: float) -> T:
        """``fn(tx)`` as one transaction: synchronous, holding the write lock, touching neither the
        event loop nor Discord; it returns what the caller needs (``storage.sql.TX_RULE``)."""
        return await self.db.run(lambda c: fn(CodeTx(c, now)))

    async def start_setup(
        self, customer_id: int, sealed: str, now: float, expires_at: float
    ) -> SetupMessage | None:
        """A new sealed secret, pending until its first code or ``expires_at`` (an existing setup
        keeps working until then). Returns the DM of the setup it abandons, to delete."""

        def write(c: Connection) -> SetupMessage | None:
            old = _setup_message(
                c.execute(
                    "SELECT customer_id, setup_channel_id, setup_message_id FROM mfa_secrets"
                    " WHERE customer_id = ?",
                    (customer_id,),
                ).fetchone()
            )
            c.execute(
                "INSERT INTO mfa_secrets (customer_id, pending_secret, setup_expires_at,"
                " updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET"
                " pending_secret = excluded.pending_secret, setup_expires_at ="
                " excluded.setup_expires_at, setup_channel_id = NULL, setup_message_id = NULL,"
                " updated_at = excluded.updated_at",
                (customer_id, sealed, expires_at, now),
            )
            audit_sql(
                c,
                now,
                f"customer:{customer_id}",
                "mfa_enrolment_started",
                f"customer:{customer_id}",
            )
            return old

        return await self.db.run(write)

    async def setup_sent(self, customer_id: int, channel_id: int, message_id: int) -> bool:
        """The DM showing the pending setup's key; False when that setup already ended (delete the
        DM now)."""
        return bool(
            await self.db.run(
                lambda c: (
                    c.execute(
                        "UPDATE mfa_secrets SET setup_channel_id = ?, setup_message_id = ? WHERE"
                        " customer_id = ? AND pending_secret IS NOT NULL",
                        (channel_id, message_id, customer_id),
                    ).rowcount
                )
            )
        )

    async def setup_messages_done(self) -> list[SetupMessage]:
        """DMs showing a key whose setup ended (confirmed, abandoned, reset): to delete."""
        rows = await self.db.fetchall(
            "SELECT customer_id, setup_channel_id, setup_message_id FROM mfa_secrets"
            " WHERE setup_message_id IS NOT NULL AND pending_secret IS NULL"
        )
        return [m for m in map(_setup_message, rows) if m is not None]

    async def setup_message_deleted(self, message: SetupMessage) -> None:
        await self.db.execute(
            "UPDATE mfa_secrets SET setup_channel_id = NULL, setup_message_id = NULL"
            " WHERE customer_id = ? AND setup_message_id = ?",
            (message.customer_id, message.message_id),
        )

    async def contact(self, customer_id: int) -> tuple[int, int | None, str]:
        """(Discord id, DM channel id, display name) of a customer."""
        row = await self.db.fetchone(
            "SELECT discord_id, dm_channel_id, display_name FROM customers WHERE id = ?",
            (customer_id,),
        )
        return int(row[0]), row[1], row[2]

    async def customer_id_for(self, discord_id: int, display_name: str, now: float) -> int:
        row = await self.db.run(
            lambda c: c.execute(
                "INSERT INTO customers (discord_id, display_name, created_at) VALUES (?, ?, ?) ON"
                " CONFLICT (discord_id) DO UPDATE SET display_name = excluded.display_name"
                " RETURNING id",
                (discord_id, display_name, now),
            ).fetchone()
        )
        return int(row[0])

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        """(job id, expiry) of every code request still waiting for the customer, and of every
        pending setup."""
        rows = await self.db.fetchall(
            "SELECT 'mfa:' || id, expires_at FROM mfa_challenges WHERE status = 'pending'"
            " UNION ALL SELECT 'mfa-setup:' || customer_id, setup_expires_at FROM"
            " mfa_secrets WHERE pending_secret IS NOT NULL AND setup_expires_at IS NOT NULL"
        )
        return [(r[0], r[1]) for r in rows]

    async def expects_code(self, discord_id: int) -> bool:
        """Has an authenticator (or a setup under way), or was ever asked for a code."""
        row = await self.db.fetchone(
            "SELECT 1 FROM customers c WHERE c.discord_id = ? AND (EXISTS (SELECT 1 FROM"
            " mfa_secrets s WHERE s.customer_id = c.id) OR EXISTS (SELECT 1 FROM mfa_challenges h"
            " WHERE h.customer_id = c.id))",
            (discord_id,),
        )
        return row is not None

    async def a_sealed_secret(self) -> str | None:
        """Any one stored (encrypted) authenticator secret: enough to tell whether a key opens
        them."""
        row = await self.db.fetchone(
            "SELECT COALESCE(secret, pending_secret) FROM mfa_secrets"
            " WHERE secret IS NOT NULL OR pending_secret IS NOT NULL LIMIT 1"
        )
        return row[0] if row else None

    async def enrolled(self, customer_id: int) -> bool:
        row = await self.db.fetchone(
            "SELECT secret IS NOT NULL FROM mfa_secrets WHERE customer_id = ?", (customer_id,)
        )
        return bool(row and row[0])

    async def create_challenge(
        self,
        *,
        customer_id: int,
        conversation_id: int,
        action_name: str,
        params: dict[str, Any],
        details: str,
        tool_use_id: str | None,
        expires_at: float,
        rule: str,
        prompt: Sequence[str],
        now: float,
    ) -> int:
        """A pending code request, audited, with its prompt and Cancel button owed to the
        customer."""

        def write(c: Connection) -> int:
            challenge_id = c.execute(
                "INSERT INTO mfa_challenges (customer_id, conversation_id, action_name,"
                " action_params, details, tool_use_id, expires_at, created_at) VALUES (?, ?, ?, ?,"
                " ?, ?, ?, ?) RETURNING id",
                (
                    customer_id,
                    conversation_id,
                    action_name,
                    json.dumps(params, ensure_ascii=False),
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
                "mfa_challenge_started",
                f"mfa:{challenge_id}",
                {"action": action_name, "rule": rule},
            )
            # Owed in the same transaction: a crash after this never leaves a code request the
            # customer can't see.
            enqueue_sql(
                c, customer_id, None, prompt, now, buttons=[{"kind": "mfa", "id": challenge_id}]
            )
            return challenge_id

        return await self.db.run(write)
