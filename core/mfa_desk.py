"""Enrolment and code challenges: destructive actions run only after a correct one-time code.

Everything that decides is one transaction: the code is checked inside it against the secret
(decrypted there, never stored in clear), the challenge moves from pending once, the step is
recorded so the code never works again, and wrong codes are counted in the database (limits
survive restarts). Codes never reach the database, the log, the audit or Claude: the DM that
carries one is stored as ``[one-time code]``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from core.actions import Action, ActionContext, ActionRegistry
from core.clock import Clock
from core.confirmations import CustomerStep, StepRequest, details_text
from core.mfa import SecretBox, generate_secret, matching_step, provisioning_uri, qr_png
from core.outbox import Outbox
from core.policy import Policy
from core.text import split_message
from storage.conversations import audit_sql, enqueue_sql
from storage.db import Database

log = logging.getLogger(__name__)

REDACTED = "[one-time code]"
HOUR = 3600.0


@dataclass(frozen=True)
class Enrolment:
    text: str
    png: bytes
    uri: str


@dataclass(frozen=True)
class Challenge(StepRequest):
    wrong: int

    @classmethod
    def from_row(cls, row: Any) -> Challenge:
        return cls(row["id"], row["customer_id"], row["discord_id"], row["conversation_id"], row["action_name"],
                   json.loads(row["action_params"]), row["expires_at"], row["wrong"])


_CHALLENGE = ("SELECT h.*, c.discord_id FROM mfa_challenges h JOIN customers c ON c.id = h.customer_id")


class MfaDesk(CustomerStep):
    subject = "mfa"

    def __init__(self, *, db: Database, policy: Policy, clock: Clock, registry: ActionRegistry, outbox: Outbox,
                 box: SecretBox) -> None:
        super().__init__(db=db, policy=policy, clock=clock, registry=registry, outbox=outbox)
        self.box = box

    @property
    def issuer(self) -> str:
        return self.policy["mfa"]["issuer"] or self.policy["agent"]["business_name"]

    # -- enrolment --------------------------------------------------------------------------

    async def start_enrolment(self, customer_id: int, account: str) -> Enrolment:
        """A new secret, kept as pending (encrypted) until the customer sends its first code.

        An existing setup keeps working until then: re-enrolling replaces it only when confirmed.
        """
        secret = generate_secret()
        sealed = self.box.seal(secret)
        now = self.clock.now()

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO mfa_secrets (customer_id, pending_secret, updated_at) VALUES (?, ?, ?)"
                      " ON CONFLICT (customer_id) DO UPDATE SET pending_secret = excluded.pending_secret,"
                      " updated_at = excluded.updated_at", (customer_id, sealed, now))
            audit_sql(c, now, f"customer:{customer_id}", "mfa_enrolment_started", f"customer:{customer_id}")

        await self.db.run(write)
        uri = provisioning_uri(secret, account, self.issuer)
        return Enrolment(self.policy.message("mfa_enrol", secret=secret, uri=uri), qr_png(uri), uri)

    async def customer_id_for(self, discord_id: int, display_name: str) -> int:
        now = self.clock.now()
        row = await self.db.run(lambda c: c.execute(
            "INSERT INTO customers (discord_id, display_name, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (discord_id) DO UPDATE SET display_name = excluded.display_name RETURNING id",
            (discord_id, display_name, now)).fetchone())
        return int(row[0])

    async def expects_code(self, discord_id: int) -> bool:
        """Whether a 6-digit message from this customer is treated as a code: they have an authenticator (or
        are setting one up), or were ever asked for a code (their setup may have been reset since). Such a
        message is never stored or shown to Claude, even when no code was asked."""
        row = await self.db.fetchone(
            "SELECT 1 FROM customers c WHERE c.discord_id = ? AND (EXISTS (SELECT 1 FROM mfa_secrets s"
            " WHERE s.customer_id = c.id) OR EXISTS (SELECT 1 FROM mfa_challenges h WHERE h.customer_id = c.id))",
            (discord_id,))
        return row is not None

    # -- challenges -------------------------------------------------------------------------

    async def enrolled(self, customer_id: int) -> bool:
        row = await self.db.fetchone("SELECT secret IS NOT NULL FROM mfa_secrets WHERE customer_id = ?",
                                     (customer_id,))
        return bool(row and row[0])

    async def challenge(self, ctx: ActionContext, action: Action, params: dict[str, Any],
                        preview: dict[str, Any] | None, tool_use_id: str | None, rule: str) -> tuple[int, str]:
        """Ask for a code before ``action`` runs; returns (challenge id, what to tell the customer)."""
        assert ctx.conversation_id is not None
        now = self.clock.now()
        minutes = self.policy["mfa"]["challenge_minutes"]
        details = details_text(action, params, preview)

        def write(c: sqlite3.Connection) -> int:
            challenge_id = c.execute(
                "INSERT INTO mfa_challenges (customer_id, conversation_id, action_name, action_params, details,"
                " tool_use_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.customer_id, ctx.conversation_id, action.name, json.dumps(params, ensure_ascii=False), details,
                 tool_use_id, now + minutes * 60, now)).lastrowid
            audit_sql(c, now, "agent", "mfa_challenge_started", f"mfa:{challenge_id}",
                      {"action": action.name, "rule": rule})
            # Owed in the same transaction: a crash after this never leaves a code request the customer can't see.
            enqueue_sql(c, ctx.customer_id, None, split_message(prompt), now,
                        buttons=[{"kind": "mfa", "id": challenge_id}])
            return challenge_id

        prompt = self.policy.message("mfa_prompt", details=details, minutes=f"{minutes:g}")
        challenge_id = await self.db.run(write)
        self.outbox.kick(ctx.customer_id)
        if self.schedule is not None:
            self.schedule(f"mfa:{challenge_id}", now + minutes * 60)
        return challenge_id, prompt

    async def submit_code(self, customer_id: int, code: str) -> None:
        """A code from the customer: for the pending challenge, else for a pending enrolment."""
        now = self.clock.now()
        mfa = self.policy["mfa"]

        def check(c: sqlite3.Connection) -> tuple[Challenge | None, str | None]:
            """(a challenge to run, or None; what to tell the customer, or None when running it says it)."""
            row = c.execute("SELECT * FROM mfa_secrets WHERE customer_id = ?", (customer_id,)).fetchone()
            pending = c.execute(f"{_CHALLENGE} WHERE h.customer_id = ? AND h.status = 'pending' ORDER BY h.id DESC"
                                " LIMIT 1", (customer_id,)).fetchone()
            if pending is None:
                return None, self._enrol_with(c, row, code, now)
            challenge = Challenge.from_row(pending)
            summary = self._summary(challenge.action_name)
            if challenge.expires_at <= now:
                self._finish_sql(c, challenge, "expired", now)
                return None, self.policy.message("mfa_expired", action=summary)
            if row is None or row["secret"] is None:
                if row is not None and row["pending_secret"] is not None:
                    return None, self._enrol_with(c, row, code, now)  # setting up again after a reset
                return None, self.policy.message("mfa_not_enrolled", action=summary)
            if row["locked_at"] is not None:
                self._finish_sql(c, challenge, "failed", now)
                return None, self.policy.message("mfa_locked")
            step = matching_step(self.box.open(row["secret"]), code, now, row["last_step"])
            if step is not None:
                won = c.execute("UPDATE mfa_challenges SET status = 'passed', decided_at = ? WHERE id = ?"
                                " AND status = 'pending'", (now, challenge.id)).rowcount
                if not won:
                    return None, None
                self._use_step_sql(c, customer_id, step, now)
                audit_sql(c, now, f"customer:{customer_id}", "mfa_code_accepted", f"mfa:{challenge.id}",
                          {"action": challenge.action_name})
                return challenge, None
            return None, self._wrong_sql(c, challenge, summary, now, mfa)

        challenge, text = await self.db.run(check)
        if challenge is not None:
            await self._run(challenge)
            return
        if text:
            await self.db.run(lambda c: enqueue_sql(c, customer_id, None, [text], now))
            self.outbox.kick(customer_id)

    def _enrol_with(self, c: sqlite3.Connection, row: Any, code: str, now: float) -> str | None:
        if row is None or row["pending_secret"] is None:
            return self.policy.message("mfa_unexpected")
        step = matching_step(self.box.open(row["pending_secret"]), code, now, 0)
        if step is None:
            audit_sql(c, now, f"customer:{row['customer_id']}", "mfa_enrolment_code_wrong",
                      f"customer:{row['customer_id']}")
            return self.policy.message("mfa_enrol_wrong")
        c.execute("UPDATE mfa_secrets SET secret = pending_secret, pending_secret = NULL, last_step = ?,"
                  " enrolled_at = ?, updated_at = ? WHERE customer_id = ?", (step, now, now, row["customer_id"]))
        audit_sql(c, now, f"customer:{row['customer_id']}", "mfa_enrolled", f"customer:{row['customer_id']}")
        return self.policy.message("mfa_enrolled")

    def _wrong_sql(self, c: sqlite3.Connection, challenge: Challenge, summary: str, now: float,
                   mfa: dict[str, Any]) -> str:
        c.execute("UPDATE mfa_challenges SET wrong = wrong + 1 WHERE id = ?", (challenge.id,))
        audit_sql(c, now, f"customer:{challenge.customer_id}", "mfa_code_wrong", f"mfa:{challenge.id}")
        if self._count_wrong_sql(c, challenge.customer_id, now):
            self._finish_sql(c, challenge, "failed", now, tell=False)
            return self.policy.message("mfa_locked")
        if challenge.wrong + 1 >= mfa["attempts_per_challenge"]:
            self._finish_sql(c, challenge, "failed", now, tell=False)
            return self.policy.message("mfa_too_many", action=summary)
        return self.policy.message("mfa_wrong", left=str(mfa["attempts_per_challenge"] - challenge.wrong - 1))

    def _count_wrong_sql(self, c: sqlite3.Connection, customer_id: int, now: float) -> bool:
        """Count a wrong code toward the hourly limit; True when it now locks this person's codes."""
        c.execute("INSERT INTO mfa_failures (customer_id, at) VALUES (?, ?)", (customer_id, now))
        recent = c.execute("SELECT COUNT(*) FROM mfa_failures WHERE customer_id = ? AND at > ?",
                           (customer_id, now - HOUR)).fetchone()[0]
        if recent < self.policy["mfa"]["failures_per_hour"]:
            return False
        c.execute("UPDATE mfa_secrets SET locked_at = ?, updated_at = ? WHERE customer_id = ?", (now, now, customer_id))
        audit_sql(c, now, "system", "mfa_locked", f"customer:{customer_id}", {"wrong_codes_last_hour": recent})
        return True

    @staticmethod
    def _use_step_sql(c: sqlite3.Connection, customer_id: int, step: int, now: float) -> None:
        """A code was accepted: it, and every older one, can never be used again."""
        c.execute("UPDATE mfa_secrets SET last_step = ?, updated_at = ? WHERE customer_id = ?",
                  (step, now, customer_id))

    def _finish_sql(self, c: sqlite3.Connection, challenge: Challenge, status: str, now: float, *,
                    tell: bool = False, text: str | None = None) -> bool:
        won = c.execute("UPDATE mfa_challenges SET status = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
                        (status, now, challenge.id)).rowcount
        if won:
            audit_sql(c, now, "system", f"mfa_challenge_{status}", f"mfa:{challenge.id}",
                      {"action": challenge.action_name})
            note = f"The code request for {challenge.action_name} (#{challenge.id}) ended: {status}; it was not done."
            if tell:
                self._tell_sql(c, challenge, text or "", note, now)
        return bool(won)

    async def _run(self, challenge: Challenge) -> None:
        await self._run_decided(challenge, done="mfa_done", failed="mfa_failed",
                                how="The customer gave a correct one-time code for")

    async def cancel(self, challenge_id: int, discord_id: int) -> tuple[bool, str]:
        now = self.clock.now()

        def write(c: sqlite3.Connection) -> tuple[bool, str, int | None]:
            row = c.execute(f"{_CHALLENGE} WHERE h.id = ?", (challenge_id,)).fetchone()
            if row is None:
                return False, "That request does not exist.", None
            challenge = Challenge.from_row(row)
            if challenge.discord_id != discord_id:
                return False, "Only the customer who was asked can cancel this.", None
            text = self.policy.message("mfa_cancelled", action=self._summary(challenge.action_name))
            if not self._finish_sql(c, challenge, "cancelled", now, tell=True, text=text):
                return False, f"This was already {row['status']}; nothing more was done.", None
            return True, text, challenge.customer_id

        changed, text, customer_id = await self.db.run(write)
        if customer_id is not None:
            self.outbox.kick(customer_id)
        return changed, text

    async def expire_due(self) -> int:
        now = self.clock.now()

        def write(c: sqlite3.Connection) -> list[int]:
            rows = c.execute(f"{_CHALLENGE} WHERE h.status = 'pending' AND h.expires_at <= ?", (now,)).fetchall()
            done = []
            for challenge in map(Challenge.from_row, rows):
                text = self.policy.message("mfa_expired", action=self._summary(challenge.action_name))
                if self._finish_sql(c, challenge, "expired", now, tell=True, text=text):
                    done.append(challenge.customer_id)
            return done

        customers = await self.db.run(write)
        for customer_id in set(customers):
            self.outbox.kick(customer_id)
        return len(customers)

    # -- operators ----------------------------------------------------------------------------

    async def verify_person(self, discord_id: int, code: str) -> str | None:
        """Check a code typed by anyone with an authenticator (an operator approving a large amount).

        None when it is right (and now used up); else why not. Wrong codes count toward the same lock.
        """
        now = self.clock.now()

        def check(c: sqlite3.Connection) -> str | None:
            row = c.execute("SELECT s.* FROM mfa_secrets s JOIN customers c ON c.id = s.customer_id"
                            " WHERE c.discord_id = ?", (discord_id,)).fetchone()
            if row is None or row["secret"] is None:
                return "you have no authenticator set up: DM the bot `enrol` first"
            if row["locked_at"] is not None:
                return "your codes are locked after too many wrong tries; another operator can /mfa-unlock you"
            step = matching_step(self.box.open(row["secret"]), code, now, row["last_step"])
            if step is not None:
                self._use_step_sql(c, row["customer_id"], step, now)
                audit_sql(c, now, f"user:{discord_id}", "mfa_operator_code_accepted", f"customer:{row['customer_id']}")
                return None
            audit_sql(c, now, f"user:{discord_id}", "mfa_operator_code_wrong", f"customer:{row['customer_id']}")
            self._count_wrong_sql(c, row["customer_id"], now)
            return "that code is not right (or was already used)"

        return await self.db.run(check)

    async def reset(self, discord_id: int, operator: str) -> str:
        return await self._operator_change(discord_id, operator, "mfa_reset", "DELETE FROM mfa_secrets"
                                           " WHERE customer_id = ?", "Their authenticator setup was removed.")

    async def unlock(self, discord_id: int, operator: str) -> str:
        return await self._operator_change(discord_id, operator, "mfa_unlocked",
                                           "UPDATE mfa_secrets SET locked_at = NULL WHERE customer_id = ?"
                                           " AND locked_at IS NOT NULL", "Codes are unlocked for them.")

    async def _operator_change(self, discord_id: int, operator: str, what: str, sql: str, done: str) -> str:
        now = self.clock.now()

        def write(c: sqlite3.Connection) -> tuple[str, int | None]:
            row = c.execute("SELECT id FROM customers WHERE discord_id = ?", (discord_id,)).fetchone()
            if row is None:
                return "That user has never written to the bot.", None
            customer_id = row[0]
            if what == "mfa_unlocked":
                # The hour's wrong codes are forgiven too, or the next wrong code would lock again.
                c.execute("DELETE FROM mfa_failures WHERE customer_id = ?", (customer_id,))
            if not c.execute(sql, (customer_id,)).rowcount:
                return ("They have no authenticator setup." if what == "mfa_reset" else "Codes are not locked "
                        "for them."), None
            audit_sql(c, now, operator, what, f"customer:{customer_id}")
            if what == "mfa_reset":
                # A code request can no longer be answered with the old app: end it (nothing runs) and say so.
                rows = c.execute(f"{_CHALLENGE} WHERE h.customer_id = ? AND h.status = 'pending'",
                                 (customer_id,)).fetchall()
                for challenge in map(Challenge.from_row, rows):
                    self._finish_sql(c, challenge, "cancelled", now, tell=True, text=self.policy.message(
                        "mfa_cancelled", action=self._summary(challenge.action_name)))
            enqueue_sql(c, customer_id, None, [self.policy.message(what)], now)
            return f"{done} They have been told.", customer_id

        text, customer_id = await self.db.run(write)
        if customer_id is not None:
            self.outbox.kick(customer_id)
        return text
