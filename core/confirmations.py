"""Customer confirmations: preference actions ("I can do X. Confirm?") and transactional ones (the exact
details, explicitly confirmed). The customer answers with a button or by typing; an unclear answer is
never taken as yes. A confirmation is decided once (a conditional update), expires, and survives restarts.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.actions import Action, ActionContext, ActionRegistry, execute
from core.clock import Clock
from core.outbox import Outbox
from core.policy import Policy
from core.replies import Reply, ReplyReader
from core.risk import Classification
from core.text import split_message
from storage.conversations import NewTurn, audit_sql, enqueue_sql, insert_turns_sql, set_status_sql, tell_customer_sql
from storage.db import Database

log = logging.getLogger(__name__)

def details_text(action: Action, params: dict[str, Any], preview: dict[str, Any] | None = None) -> str:
    """The exact details a customer confirms: what, every parameter by name, and what the action previews."""
    lines = [f"**{action.summary or action.name}**"]
    for name, value in {**params, **(preview or {})}.items():
        shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        lines.append(f"- {name.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


@dataclass(frozen=True)
class StepRequest:
    """An action waiting for the customer (a confirmation or a code): who, where, and what would run."""

    id: int
    customer_id: int
    discord_id: int
    conversation_id: int
    action_name: str
    action_params: dict[str, Any]
    expires_at: float


@dataclass(frozen=True)
class Pending(StepRequest):
    strategy: str


class CustomerStep:
    """What confirmations and code requests share: once the customer has decided, run the action once,
    record its result on the request, audit it, and tell the customer (and Claude, in the history)."""

    table = ""  # where requests live ("confirmations", "mfa_challenges")
    subject = ""  # the audit subject prefix ("confirmation", "mfa")

    def __init__(self, *, db: Database, policy: Policy, clock: Clock, registry: ActionRegistry,
                 outbox: Outbox) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.registry = registry
        self.outbox = outbox
        self.schedule: Callable[[str, float], None] | None = None  # arms the expiry (Deadlines.arm)

    def _summary(self, action_name: str) -> str:
        action = self.registry.get(action_name)
        return (action.summary if action else "") or action_name

    def _tell_sql(self, c: sqlite3.Connection, request: StepRequest, text: str, note: str, now: float) -> None:
        tell_customer_sql(c, request.customer_id, request.conversation_id, text, NewTurn("system", note), now)

    async def _run_decided(self, request: StepRequest, *, done: str, failed: str, how: str) -> str:
        summary = self._summary(request.action_name)
        ctx = ActionContext(request.customer_id, request.discord_id, self.db, self.clock.now(),
                            request.conversation_id)
        outcome, error = await execute(self.registry.get(request.action_name), ctx, request.action_params)
        now = self.clock.now()
        text = (self.policy.message(done, action=summary) if error is None
                else self.policy.message(failed, action=summary, error=error))

        def record(c: sqlite3.Connection) -> None:
            c.execute(f"UPDATE {self.table} SET result = ? WHERE id = ?",
                      (json.dumps(outcome, ensure_ascii=False, default=str), request.id))
            audit_sql(c, now, "system", "action_executed" if error is None else "action_failed",
                      f"{self.subject}:{request.id}", {"action": request.action_name, "result": outcome})
            self._tell_sql(c, request, text, f"{how} {request.action_name} with {json.dumps(request.action_params)}"
                                             f" ({self.subject} #{request.id}); result: "
                                             f"{json.dumps(outcome, default=str)[:1500]}", now)

        await self.db.run(record)
        self.outbox.kick(request.customer_id)
        return text


class ConfirmationDesk(CustomerStep):
    table = "confirmations"
    subject = "confirmation"

    def __init__(self, *, db: Database, policy: Policy, clock: Clock, registry: ActionRegistry,
                 outbox: Outbox) -> None:
        super().__init__(db=db, policy=policy, clock=clock, registry=registry, outbox=outbox)
        words = self.policy["confirmations"]
        self.replies = ReplyReader(words["yes_words"], words["no_words"])

    # -- asking -----------------------------------------------------------------------------

    async def request(self, ctx: ActionContext, action: Action, params: dict[str, Any],
                      decision: Classification, tool_use_id: str | None,
                      preview: dict[str, Any] | None = None) -> tuple[int, str]:
        """Store a pending confirmation; returns (its id, the question for the customer)."""
        assert ctx.conversation_id is not None
        now = self.clock.now()
        details = details_text(action, params, preview)
        if decision.strategy == "confirm":
            flat = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items())
            prompt = self.policy.message("confirm_preference",
                                         details=f"{action.summary or action.name}" + (f" ({flat})" if flat else ""))
        else:
            prompt = self.policy.message("confirm_details", details=details)
        expires = now + self.policy["risk"]["confirmation_minutes"] * 60

        def write(c: sqlite3.Connection) -> int:
            confirmation_id = c.execute(
                "INSERT INTO confirmations (customer_id, conversation_id, action_name, action_params, strategy,"
                " risk_level, rules, details, tool_use_id, expires_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.customer_id, ctx.conversation_id, action.name, json.dumps(params, ensure_ascii=False),
                 decision.strategy, decision.level, json.dumps(decision.rules), details, tool_use_id, expires, now),
            ).lastrowid
            audit_sql(c, now, "agent", "confirmation_requested", f"confirmation:{confirmation_id}",
                      {"action": action.name, "strategy": decision.strategy, "rule": decision.rule})
            # Owed in the same transaction: a crash after this never leaves a confirmation the customer can't see.
            enqueue_sql(c, ctx.customer_id, None, split_message(prompt), now,
                        buttons=[{"kind": "confirm", "id": confirmation_id, "style": decision.strategy}])
            return confirmation_id

        confirmation_id = await self.db.run(write)
        self.outbox.kick(ctx.customer_id)
        if self.schedule is not None:
            self.schedule(f"confirmation:{confirmation_id}", expires)
        return confirmation_id, prompt

    async def pending_for(self, customer_id: int) -> Pending | None:
        row = await self.db.fetchone(
            "SELECT f.*, c.discord_id FROM confirmations f JOIN customers c ON c.id = f.customer_id"
            " WHERE f.customer_id = ? AND f.status = 'pending' ORDER BY f.id DESC LIMIT 1", (customer_id,))
        return self._pending(row) if row else None

    @staticmethod
    def _pending(row: Any) -> Pending:
        return Pending(row["id"], row["customer_id"], row["discord_id"], row["conversation_id"], row["action_name"],
                       json.loads(row["action_params"]), row["expires_at"], row["strategy"])

    # -- the customer's answer ----------------------------------------------------------------

    async def handle_reply(self, customer_id: int, turns: list[Any]) -> bool:
        """A typed answer to a pending confirmation, among the customer's waiting messages. True when one was
        handled: only that message is used up, so a question sent with it ("where is my parcel?", "yes")
        is still answered by Claude in the next round."""
        pending = await self.pending_for(customer_id)
        if pending is None:
            return False
        for turn in turns:
            meaning = self.replies.read(turn.content)
            if meaning is Reply.OTHER:
                continue  # a new question, or a qualified yes: Claude answers it; the confirmation stays pending
            if meaning is Reply.UNCLEAR:
                await self._ask_again(pending, [turn])
                return True
            if meaning is Reply.NO_AND_MORE:
                # "no, make it 2": cancel, and Claude answers the messages (this one included) now.
                await self.decide(pending.id, False, via="typed")
                return False
            await self.decide(pending.id, meaning is Reply.YES, via="typed", answered_turns=[turn.id])
            return True
        return False

    async def _ask_again(self, pending: Pending, turns: list[Any]) -> None:
        now = self.clock.now()
        text = self.policy.message("confirm_again", action=self._summary(pending.action_name))
        buttons = [{"kind": "confirm", "id": pending.id, "style": pending.strategy}]

        def write(c: sqlite3.Connection) -> None:
            set_status_sql(c, [t.id for t in turns], "answered")
            c.execute("UPDATE confirmations SET asked_times = asked_times + 1 WHERE id = ?", (pending.id,))
            [turn_id] = insert_turns_sql(c, pending.conversation_id, pending.customer_id,
                                         [NewTurn("assistant", text)], now, after_turn_id=turns[-1].id)
            enqueue_sql(c, pending.customer_id, turn_id, [text], now, buttons=buttons)
            audit_sql(c, now, f"customer:{pending.customer_id}", "confirmation_unclear",
                      f"confirmation:{pending.id}", {"reply_chars": len(turns[-1].content)})

        await self.db.run(write)
        self.outbox.kick(pending.customer_id)

    async def decide(self, confirmation_id: int, yes: bool, *, via: str, by_discord_id: int | None = None,
                     answered_turns: list[int] | None = None) -> tuple[bool, str]:
        """Confirm (run the action once) or cancel. Returns (changed, what to tell whoever acted)."""
        now = self.clock.now()

        def claim(c: sqlite3.Connection) -> tuple[Pending | None, bool, str, int | None]:
            """(the confirmation to run, whether this call changed it, what to say, whose outbox to kick)."""
            row = c.execute("SELECT f.*, c.discord_id FROM confirmations f JOIN customers c ON c.id = f.customer_id"
                            " WHERE f.id = ?", (confirmation_id,)).fetchone()
            if row is None:
                return None, False, "That confirmation does not exist.", None
            pending = self._pending(row)
            if by_discord_id is not None and by_discord_id != pending.discord_id:
                return None, False, "Only the customer who was asked can answer this.", None
            if answered_turns:
                set_status_sql(c, answered_turns, "answered")
            if row["status"] != "pending":
                return None, False, f"This was already {row['status']}; nothing more was done.", None
            if pending.expires_at <= now:
                self._expire_sql(c, pending, now)
                return None, True, "This confirmation had expired; nothing was done.", pending.customer_id
            status = "confirmed" if yes else "cancelled"
            c.execute("UPDATE confirmations SET status = ?, decided_at = ?, decided_via = ? WHERE id = ?"
                      " AND status = 'pending'", (status, now, via, confirmation_id))
            audit_sql(c, now, f"customer:{pending.customer_id}", f"confirmation_{status}",
                      f"confirmation:{confirmation_id}", {"via": via, "action": pending.action_name})
            if yes:
                return pending, True, "", pending.customer_id
            text = self.policy.message("confirm_cancelled", action=self._summary(pending.action_name))
            self._tell_sql(c, pending, text, f"The customer cancelled {pending.action_name} (confirmation"
                                             f" #{confirmation_id}); it was not done.", now)
            return None, True, text, pending.customer_id

        to_run, changed, text, customer_id = await self.db.run(claim)
        if to_run is not None:
            return True, await self._run(to_run)
        if customer_id is not None:
            self.outbox.kick(customer_id)
        return changed, text

    async def _run(self, pending: Pending) -> str:
        return await self._run_decided(pending, done="confirmed_done", failed="confirmed_failed",
                                       how="The customer confirmed")

    # -- expiry -------------------------------------------------------------------------------

    def _expire_sql(self, c: sqlite3.Connection, pending: Pending, now: float) -> bool:
        won = c.execute("UPDATE confirmations SET status = 'expired', decided_at = ? WHERE id = ?"
                        " AND status = 'pending'", (now, pending.id)).rowcount
        if won:
            audit_sql(c, now, "system", "confirmation_expired", f"confirmation:{pending.id}",
                      {"action": pending.action_name})
            text = self.policy.message("confirm_expired", action=self._summary(pending.action_name))
            self._tell_sql(c, pending, text,
                           f"The confirmation for {pending.action_name} (#{pending.id}) expired; it was not done.", now)
        return bool(won)

    async def expire_due(self) -> int:
        """Cancel every confirmation past its expiry and tell the customer. Returns how many."""
        now = self.clock.now()

        def write(c: sqlite3.Connection) -> list[int]:
            rows = c.execute("SELECT f.*, c.discord_id FROM confirmations f JOIN customers c ON c.id = f.customer_id"
                             " WHERE f.status = 'pending' AND f.expires_at <= ?", (now,)).fetchall()
            return [p.customer_id for p in map(self._pending, rows) if self._expire_sql(c, p, now)]

        customers = await self.db.run(write)
        for customer_id in set(customers):
            self.outbox.kick(customer_id)
        return len(customers)
