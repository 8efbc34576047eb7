"""Tickets and the desk outbox: every statement the operator desk runs.

``TicketStore.run(fn)`` runs one of core's decisions as one transaction with a ``DeskTx``, which
holds the statements it may use; the other methods are whole changes or plain reads. Every state
change is a conditional UPDATE (``... AND status = 'open'``) whose row count says whether this
caller won, with its audit row in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.conversations import NewTurn, set_status_sql, tell_customer_sql
from storage.db import Connection, Store
from storage.drafts import Draft, decide_draft_sql, draft_sql, end_drafts_sql
from storage.records import NOT_ENDED_SQL, DeskOp, Kind, Priority, Source, Ticket
from storage.sql import Tx, audit_sql, customer_sql, desk_post_sql, enqueue_sql, to_json

T = TypeVar("T")
_TICKET_SELECT = (
    "SELECT t.*, c.discord_id, c.display_name, c.agent_name FROM tickets t"
    " JOIN customers c ON c.id = t.customer_id"
)


@dataclass(frozen=True)
class Approvals:
    """Who has approved a ticket so far, first first, and the details they all approved (an edit
    drops approvals of other details: see DeskTx.add_approval); None when nobody has."""

    names: list[str]
    details: dict[str, Any] | None


def approvals_sql(c: Connection, ticket_id: int) -> Approvals:
    rows = c.execute(
        "SELECT operator_name, params FROM ticket_approvals WHERE ticket_id = ? ORDER BY"
        " approved_at, operator_id",
        (ticket_id,),
    ).fetchall()
    return Approvals([r[0] for r in rows], json.loads(rows[0][1]) if rows else None)


def ticket_sql(c: Connection, ticket_id: int) -> Ticket | None:
    row = c.execute(f"{_TICKET_SELECT} WHERE t.id = ?", (ticket_id,)).fetchone()
    return Ticket.from_row(row) if row else None


@dataclass(frozen=True)
class NewTicket:
    customer_id: int
    conversation_id: int
    kind: Kind
    source: Source
    priority: Priority
    question: str
    reason: str = ""
    action_name: str | None = None
    action_params: dict[str, Any] | None = None
    tool_use_id: str | None = None
    takeover_by: int | None = None
    takeover_by_name: str | None = None
    reminder_due_at: float | None = None
    timeout_due_at: float | None = None


FILES_ON_OPEN = 10  # a new ticket's thread gets the conversation's newest files, at most this many


def open_ticket_sql(c: Connection, ticket: NewTicket, now: float) -> int:
    ticket_id = c.execute(
        "INSERT INTO tickets (customer_id, conversation_id, kind, source, priority, question,"
        " reason, action_name, action_params, tool_use_id, takeover_by, takeover_by_name,"
        " reminder_due_at, timeout_due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?) RETURNING id",
        (
            ticket.customer_id,
            ticket.conversation_id,
            ticket.kind,
            ticket.source,
            ticket.priority,
            ticket.question,
            ticket.reason,
            ticket.action_name,
            to_json(ticket.action_params),
            ticket.tool_use_id,
            ticket.takeover_by,
            ticket.takeover_by_name,
            ticket.reminder_due_at,
            ticket.timeout_due_at,
            now,
        ),
    ).fetchone()[0]
    desk_post_sql(c, ticket_id, DeskOp.OPEN, now)
    # the files the customer sent in this conversation, re-posted in the thread (the newest few)
    files = c.execute(
        "SELECT f.id FROM files f JOIN turns t ON t.id = f.turn_id WHERE t.conversation_id = ? AND"
        " f.origin = 'customer' ORDER BY f.id DESC LIMIT ?",
        (ticket.conversation_id, FILES_ON_OPEN),
    ).fetchall()
    for (file_id,) in reversed(files):
        desk_post_sql(c, ticket_id, DeskOp.FILE, now, str(file_id))
    return ticket_id


def same_open_approval_sql(
    c: Connection, customer_id: int, action_name: str, params: dict[str, Any]
) -> int | None:
    """An approval for the same action and parameters still waiting: the model asked twice."""
    row = c.execute(
        "SELECT id FROM tickets WHERE customer_id = ? AND kind = 'approval' AND status = 'open'"
        " AND action_name = ? AND action_params = ?",
        (customer_id, action_name, to_json(params)),
    ).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class DeskItem:
    id: int
    ticket_id: int
    op: DeskOp
    content: str
    attempts: int


class DeskTx(Tx):
    """The statements of one desk transaction: core decides (who may, what is said), these write.
    Every state change is conditional (its bool says whether this caller won)."""

    # reading
    def ticket(self, ticket_id: int) -> Ticket | None:
        return ticket_sql(self.c, ticket_id)

    def same_open_approval(
        self, customer_id: int, action_name: str, params: dict[str, Any]
    ) -> int | None:
        return same_open_approval_sql(self.c, customer_id, action_name, params)

    def open_count(self, customer_id: int) -> int:
        """The customer's tickets not closed yet (an approval decided but not closed counts until it
        closes)."""
        return int(
            self.c.execute(
                "SELECT COUNT(*) FROM tickets WHERE customer_id = ? AND status = 'open'",
                (customer_id,),
            ).fetchone()[0]
        )

    def is_open(self, ticket_id: int) -> bool:
        return (
            self.c.execute(
                "SELECT 1 FROM tickets WHERE id = ? AND status = 'open'", (ticket_id,)
            ).fetchone()
            is not None
        )

    def newest_open(self, customer_id: int) -> int | None:
        row = self.c.execute(
            "SELECT id FROM tickets WHERE customer_id = ? AND status = 'open' ORDER BY id DESC"
            " LIMIT 1",
            (customer_id,),
        ).fetchone()
        return row[0] if row else None

    def open_of_source(self, customer_id: int, source: str) -> int | None:
        """The customer's newest unclosed ticket from this source (the same trouble again)."""
        row = self.c.execute(
            "SELECT id FROM tickets WHERE customer_id = ? AND status != 'closed' AND source = ?"
            " ORDER BY id DESC LIMIT 1",
            (customer_id, source),
        ).fetchone()
        return row[0] if row else None

    def other_takeover(self, customer_id: int, ticket_id: int) -> tuple[int, str] | None:
        """Another unclosed ticket of this customer where an operator (not the relay) has taken
        over."""
        row = self.c.execute(
            "SELECT id, takeover_by_name FROM tickets WHERE customer_id = ? AND status != 'closed'"
            " AND takeover_by IS NOT NULL AND takeover_by != 0 AND id != ?",
            (customer_id, ticket_id),
        ).fetchone()
        return (row[0], row[1]) if row else None

    # writing
    def open_ticket(self, ticket: NewTicket) -> int:
        return open_ticket_sql(self.c, ticket, self.now)

    def draft(self, draft_id: int) -> Draft | None:
        return draft_sql(self.c, draft_id)

    def decide_draft(
        self, draft_id: int, status: str, operator_id: int, operator_name: str, sent: str | None
    ) -> bool:
        return decide_draft_sql(
            self.c, draft_id, status, operator_id, operator_name, sent, self.now
        )

    def end_drafts(self, ticket_id: int) -> None:
        """The ticket no longer takes a draft (answered by hand, closed, taken over): its drafts
        are superseded and the posted ones lose their buttons."""
        for draft_id in end_drafts_sql(self.c, ticket_id, self.now):
            self.post(ticket_id, DeskOp.DRAFT_END, str(draft_id))

    def post(self, ticket_id: int, op: DeskOp, text: str = "") -> None:
        desk_post_sql(self.c, ticket_id, op, self.now, text)

    def owe(
        self,
        customer_id: int,
        turn_id: int | None,
        chunks: Sequence[str],
        buttons: list[dict[str, Any]] | None = None,
    ) -> None:
        enqueue_sql(self.c, customer_id, turn_id, chunks, self.now, buttons=buttons)

    def tell(
        self,
        ticket: Ticket,
        text: str,
        turn: NewTurn,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Tell the ticket's customer ``text`` (with ``files``) and store ``turn`` in their
        conversation (Claude reads it)."""
        tell_customer_sql(
            self.c, ticket.customer_id, ticket.conversation_id, text, turn, self.now, files
        )

    def hold(self, turn_ids: Sequence[int]) -> None:
        set_status_sql(self.c, turn_ids, "held")

    def notice_once(self, conversation_id: int) -> bool:
        """True the first time a conversation's "a person will answer" notice is owed."""
        return bool(
            self.c.execute(
                "UPDATE conversations SET ai_notice_sent = 1 WHERE id = ? AND ai_notice_sent = 0",
                (conversation_id,),
            ).rowcount
        )

    def responded(self, ticket_id: int, status: str) -> None:
        """A person wrote to the customer: the ticket's status, and its first response time
        (once)."""
        self.c.execute(
            "UPDATE tickets SET status = ?, first_response_at = COALESCE(first_response_at, ?)"
            " WHERE id = ?",
            (status, self.now, ticket_id),
        )

    def answered(self, ticket_id: int, text: str, by_name: str) -> None:
        """The first answer to a question, kept on the ticket (an agent reads it; the export shows
        it)."""
        self.c.execute(
            "UPDATE tickets SET answer = ?, answered_by_name = ? WHERE id = ? AND answer IS NULL",
            (text, by_name, ticket_id),
        )
        self.end_drafts(ticket_id)  # answered: a draft still waiting is no longer wanted

    # agents (MCP)
    def agent(self, name: str, idle_seconds: float) -> tuple[int, int]:
        """(customer id, conversation id) of an agent: a customer row without DMs (a negative id no
        Discord user has), and its current conversation (a new one after ``idle_seconds`` of
        silence)."""
        import hashlib

        synthetic = -(int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big") + 1)
        [customer_id] = self.c.execute(
            "INSERT INTO customers (discord_id, display_name, agent_name, dm_status, created_at)"
            " VALUES (?, ?, ?, 'closed', ?) ON CONFLICT (discord_id) DO UPDATE SET display_name ="
            " excluded.display_name RETURNING id",
            (synthetic, name, name, self.now),
        ).fetchone()
        return customer_id, self._conversation(customer_id, idle_seconds)

    def person(
        self, discord_id: int, display_name: str, idle_seconds: float
    ) -> tuple[int, int, Any]:
        """(customer id, conversation id, their row) of a Discord user an operator contacts first (a
        row is made if they never wrote)."""
        row = customer_sql(self.c, discord_id, display_name, self.now)
        return row["id"], self._conversation(row["id"], idle_seconds), row

    def _conversation(self, customer_id: int, idle_seconds: float) -> int:
        """The customer's current conversation (a new one after ``idle_seconds`` of silence)."""
        row = self.c.execute(
            "SELECT id, last_activity_at FROM conversations WHERE customer_id = ? AND ended_at IS"
            " NULL ORDER BY id DESC LIMIT 1",
            (customer_id,),
        ).fetchone()
        if row is not None and self.now - row["last_activity_at"] <= idle_seconds:
            self.c.execute(
                "UPDATE conversations SET last_activity_at = ? WHERE id = ?", (self.now, row["id"])
            )
            return row["id"]
        if row is not None:
            self.c.execute(
                "UPDATE conversations SET ended_at = ? WHERE id = ?", (self.now, row["id"])
            )
        return self.c.execute(
            "INSERT INTO conversations (customer_id, started_at, last_activity_at) VALUES (?, ?, ?)"
            " RETURNING id",
            (customer_id, self.now, self.now),
        ).fetchone()[0]

    def keep_note(self, ticket_id: int, author: str, text: str) -> None:
        """An operators' internal note in a ticket's thread, kept for its transcript."""
        self.c.execute(
            "INSERT INTO thread_notes (ticket_id, author, content, created_at) VALUES (?, ?, ?, ?)",
            (ticket_id, author, text, self.now),
        )

    def see_thread_message(self, thread_id: int, message_id: int) -> bool:
        """True the first time a thread message is handled (live or caught up after a start)."""
        return bool(
            self.c.execute(
                "INSERT INTO thread_messages_seen (message_id, thread_id, seen_at) VALUES (?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (message_id, thread_id, self.now),
            ).rowcount
        )

    def by_idempotency_key(self, customer_id: int, key: str) -> tuple[Ticket, str | None] | None:
        """The agent's ticket opened with this key, and the fingerprint of the request it stood
        for."""
        row = self.c.execute(
            f"{_TICKET_SELECT} WHERE t.customer_id = ? AND t.idempotency_key = ?",
            (customer_id, key),
        ).fetchone()
        return (Ticket.from_row(row), row["idempotency_fingerprint"]) if row else None

    def agent_fields(
        self,
        ticket_id: int,
        idempotency_key: str | None,
        expires_at: float | None,
        fingerprint: str | None = None,
        answer_schema: dict[str, Any] | None = None,
    ) -> None:
        self.c.execute(
            "UPDATE tickets SET idempotency_key = ?, expires_at = ?, idempotency_fingerprint = ?,"
            " answer_schema = ? WHERE id = ?",
            (
                idempotency_key,
                expires_at,
                fingerprint,
                None if answer_schema is None else json.dumps(answer_schema, ensure_ascii=False),
                ticket_id,
            ),
        )

    def notify_url(self, ticket_id: int, url: str) -> None:
        self.c.execute("UPDATE tickets SET notify_url = ? WHERE id = ?", (url, ticket_id))

    def approvers_needed(self, ticket_id: int, count: int) -> None:
        self.c.execute("UPDATE tickets SET approvers_needed = ? WHERE id = ?", (count, ticket_id))

    def add_approval(
        self, ticket_id: int, operator_id: int, operator_name: str, params: dict[str, Any]
    ) -> bool:
        """One operator's approval of these details; False if they had approved them already.
        Approvals of other details are dropped: an edit starts the count again."""
        canonical = json.dumps(params, sort_keys=True, ensure_ascii=False)
        self.c.execute(
            "DELETE FROM ticket_approvals WHERE ticket_id = ? AND params <> ?",
            (ticket_id, canonical),
        )
        return bool(
            self.c.execute(
                "INSERT INTO ticket_approvals (ticket_id, operator_id, operator_name, params,"
                " approved_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (ticket_id, operator_id) DO"
                " NOTHING",
                (ticket_id, operator_id, operator_name, canonical, self.now),
            ).rowcount
        )

    def approvals(self, ticket_id: int) -> Approvals:
        return approvals_sql(self.c, ticket_id)

    def answer_data(self, ticket_id: int, data: dict[str, Any]) -> None:
        """A typed answer's fields, beside its words (``answered``)."""
        self.c.execute(
            "UPDATE tickets SET answer_data = ? WHERE id = ? AND answer_data IS NULL",
            (json.dumps(data, ensure_ascii=False), ticket_id),
        )

    def warn_auto_close(self, ticket_id: int, warned_at: float | None) -> None:
        self.c.execute(
            "UPDATE tickets SET auto_close_warned_at = ? WHERE id = ?", (warned_at, ticket_id)
        )

    def expire(self, ticket_id: int) -> bool:
        """An agent's approval request nobody decided in time: it can never be approved now."""
        return bool(
            self.c.execute(
                "UPDATE tickets SET status = 'expired', decided_at = ? WHERE id = ?"
                " AND status = 'open'",
                (self.now, ticket_id),
            ).rowcount
        )

    def expiring(self) -> list[Ticket]:
        rows = self.c.execute(
            f"{_TICKET_SELECT} WHERE t.status = 'open' AND t.expires_at <= ?", (self.now,)
        )
        return [Ticket.from_row(r) for r in rows.fetchall()]

    def approve(
        self,
        ticket_id: int,
        operator_id: int,
        operator_name: str,
        params: dict[str, Any],
        note: str | None,
    ) -> bool:
        return bool(
            self.c.execute(
                "UPDATE tickets SET status = 'approved', decided_by = ?, decided_by_name = ?,"
                " decided_at = ?, action_params = ?, decision_note = ?, first_response_at ="
                " COALESCE(first_response_at, ?) WHERE id = ? AND status = 'open'",
                (
                    operator_id,
                    operator_name,
                    self.now,
                    json.dumps(params, ensure_ascii=False),
                    note,
                    self.now,
                    ticket_id,
                ),
            ).rowcount
        )

    def executed(self, ticket_id: int, result: Any, *, only_once: bool = False) -> bool:
        """The approved action's result (``only_once``: unless one was already recorded)."""
        return bool(
            self.c.execute(
                "UPDATE tickets SET executed_at = ?, result = ? WHERE id = ?"
                + (" AND executed_at IS NULL" if only_once else ""),
                (self.now, json.dumps(result, ensure_ascii=False, default=str), ticket_id),
            ).rowcount
        )

    def deny(self, ticket_id: int, operator_id: int, operator_name: str, reason: str) -> bool:
        return bool(
            self.c.execute(
                "UPDATE tickets SET status = 'denied', decided_by = ?, decided_by_name = ?,"
                " decided_at = ?, decision_note = ?, first_response_at ="
                " COALESCE(first_response_at, ?) WHERE id = ? AND status = 'open'",
                (operator_id, operator_name, self.now, reason, self.now, ticket_id),
            ).rowcount
        )

    def claim(self, ticket_id: int, operator_id: int, operator_name: str) -> bool:
        return bool(
            self.c.execute(
                "UPDATE tickets SET claimed_by = ?, claimed_by_name = ? WHERE id = ?"
                " AND claimed_by IS NULL",
                (operator_id, operator_name, ticket_id),
            ).rowcount
        )

    def take_over(self, ticket_id: int, operator_id: int, operator_name: str) -> bool:
        taken = bool(
            self.c.execute(
                "UPDATE tickets SET takeover_by = ?, takeover_by_name = ?, claimed_by = ?,"
                " claimed_by_name = ?, first_response_at = COALESCE(first_response_at, ?) WHERE id"
                " = ? AND status != 'closed' AND (takeover_by IS NULL OR takeover_by = 0)",
                (operator_id, operator_name, operator_id, operator_name, self.now, ticket_id),
            ).rowcount
        )
        if taken:
            self.end_drafts(ticket_id)  # a person talks with the customer now
        return taken

    def hand_back(self, ticket_id: int) -> None:
        """Nobody has taken over any more; an open question counts as answered by the
        conversation."""
        self.c.execute(
            "UPDATE tickets SET takeover_by = NULL, takeover_by_name = NULL, status = CASE WHEN"
            " status = 'open' AND kind != 'approval' THEN 'answered' ELSE status END WHERE id = ?",
            (ticket_id,),
        )

    def close(self, ticket_id: int, reason: str) -> bool:
        closed = bool(
            self.c.execute(
                "UPDATE tickets SET status = 'closed', closed_at = ?, close_reason = ?,"
                " takeover_by = NULL, first_response_at = COALESCE(first_response_at, ?)"
                " WHERE id = ? AND status != 'closed'",
                (self.now, reason, self.now, ticket_id),
            ).rowcount
        )
        if closed:
            self.end_drafts(ticket_id)
        return closed

    def withdraw(self, ticket_id: int, note: str) -> bool:
        """An agent no longer wants its open ticket (the MCP tasks extension's cancel): closed,
        the note kept where an agent's result reads it."""
        closed = bool(
            self.c.execute(
                "UPDATE tickets SET status = 'closed', closed_at = ?, close_reason = ?,"
                " decision_note = ?, takeover_by = NULL WHERE id = ? AND status = 'open' AND"
                " answer IS NULL",
                (self.now, note, note, ticket_id),
            ).rowcount
        )
        if closed:
            self.end_drafts(ticket_id)
        return closed

    def settle_held(self, customer_id: int) -> None:
        """Messages held for a person (no AI, or Claude gave up) are settled by the operator."""
        self.c.execute(
            "UPDATE turns SET status = 'answered' WHERE customer_id = ? AND status = 'held'",
            (customer_id,),
        )

    def mark_dm_closed(self, customer_id: int) -> list[int]:
        """Record closed DMs on the customer's unclosed tickets not marked yet; returns those
        tickets."""
        ids = [
            r[0]
            for r in self.c.execute(
                "SELECT id FROM tickets WHERE customer_id = ? AND status != 'closed'"
                " AND dm_closed_at IS NULL",
                (customer_id,),
            )
        ]
        for ticket_id in ids:
            self.c.execute(
                "UPDATE tickets SET dm_closed_at = ? WHERE id = ?", (self.now, ticket_id)
            )
        return ids


class TicketStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def run(self, fn: Callable[[DeskTx], T], now: float) -> T:
        """``fn(tx)`` as one transaction: synchronous, holding the write lock, touching neither the
        event loop nor Discord; it returns what the caller needs (``storage.sql.TX_RULE``)."""
        return await self.db.run(lambda c: fn(DeskTx(c, now)))

    async def get(self, ticket_id: int) -> Ticket | None:
        return await self.db.run(lambda c: ticket_sql(c, ticket_id))

    async def approvals(self, ticket_id: int) -> Approvals:
        return await self.db.run(lambda c: approvals_sql(c, ticket_id))

    async def by_thread(self, thread_id: int) -> Ticket | None:
        row = await self.db.fetchone(f"{_TICKET_SELECT} WHERE t.thread_id = ?", (thread_id,))
        return Ticket.from_row(row) if row else None

    async def unclosed(self) -> list[Ticket]:
        rows = await self.db.fetchall(
            f"{_TICKET_SELECT} WHERE t.{NOT_ENDED_SQL} ORDER BY t.created_at, t.id"
        )
        return [Ticket.from_row(r) for r in rows]

    async def approved_not_executed(self) -> list[Ticket]:
        rows = await self.db.fetchall(
            f"{_TICKET_SELECT} WHERE t.status = 'approved' AND t.executed_at IS NULL"
        )
        return [Ticket.from_row(r) for r in rows]

    # -- desk outbox ------------------------------------------------------------------------

    async def next_desk_item(self, ticket_id: int) -> DeskItem | None:
        row = await self.db.fetchone(
            "SELECT * FROM desk_outbox WHERE ticket_id = ? AND status = 'pending'"
            " ORDER BY id LIMIT 1",
            (ticket_id,),
        )
        return (
            DeskItem(
                row["id"], row["ticket_id"], DeskOp(row["op"]), row["content"], row["attempts"]
            )
            if row
            else None
        )

    async def tickets_with_desk_items(self) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT ticket_id FROM desk_outbox WHERE status = 'pending'"
        )
        return [r[0] for r in rows]

    async def desk_done(self, item_id: int) -> None:
        await self.db.execute(
            "UPDATE desk_outbox SET status = 'done', attempts = attempts + 1 WHERE id = ?",
            (item_id,),
        )

    async def desk_retry(self, item_id: int, error: str, next_attempt_at: float) -> None:
        await self.db.execute(
            "UPDATE desk_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            " WHERE id = ?",
            (error[:500], next_attempt_at, item_id),
        )

    async def desk_failed(self, item: DeskItem, error: str, now: float) -> None:
        def write(c: Connection) -> None:
            c.execute(
                "UPDATE desk_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (error[:500], item.id),
            )
            audit_sql(
                c,
                now,
                "system",
                "desk_post_failed",
                f"ticket:{item.ticket_id}",
                {"op": item.op, "error": error[:500]},
            )

        await self.db.run(write)

    # -- deadlines ---------------------------------------------------------------------------

    async def remind_due(self, now: float, reminder: Callable[[int, float], str]) -> list[int]:
        """Tickets past their reminder time with no human answer: mark reminded (once), queue the
        ping with ``reminder(ticket_id, seconds_until_timeout)``, audit. One transaction; returns
        the tickets reminded."""

        def write(c: Connection) -> list[int]:
            done = []
            for ticket_id, timeout_due_at in c.execute(
                "SELECT id, timeout_due_at FROM tickets WHERE reminded_at IS NULL AND"
                " reminder_due_at <= ? AND status = 'open' AND first_response_at IS NULL",
                (now,),
            ).fetchall():
                if c.execute(
                    "UPDATE tickets SET reminded_at = ? WHERE id = ? AND reminded_at IS NULL",
                    (now, ticket_id),
                ).rowcount:
                    desk_post_sql(
                        c,
                        ticket_id,
                        DeskOp.PING,
                        now,
                        reminder(ticket_id, (timeout_due_at or now) - now),
                    )
                    audit_sql(c, now, "system", "ticket_reminder", f"ticket:{ticket_id}")
                    done.append(ticket_id)
            return done

        return await self.db.run(write)

    async def time_out_due(
        self, now: float, customer_text: Callable[[int], str], desk_text: str
    ) -> list[tuple[int, int]]:
        """Tickets past their answer time with no human answer: mark timed out (once), tell the
        customer ``customer_text(ticket_id)``, post ``desk_text`` in the thread, audit; the ticket
        stays open. One transaction; returns (ticket, customer) of each."""

        def write(c: Connection) -> list[tuple[int, int]]:
            done = []
            for ticket_id, customer_id in c.execute(
                "SELECT id, customer_id FROM tickets WHERE timed_out_at IS NULL AND timeout_due_at"
                " <= ? AND status = 'open' AND first_response_at IS NULL",
                (now,),
            ).fetchall():
                if c.execute(
                    "UPDATE tickets SET timed_out_at = ? WHERE id = ? AND timed_out_at IS NULL",
                    (now, ticket_id),
                ).rowcount:
                    enqueue_sql(c, customer_id, None, [customer_text(ticket_id)], now)
                    desk_post_sql(c, ticket_id, DeskOp.POST, now, desk_text)
                    audit_sql(c, now, "system", "ticket_timed_out", f"ticket:{ticket_id}")
                    done.append((ticket_id, customer_id))
            return done

        return await self.db.run(write)

    async def see_thread_message(
        self,
        thread_id: int,
        message_id: int,
        now: float,
        *,
        note: tuple[int, str, str] | None = None,
    ) -> bool:
        """Mark a thread message handled; ``note`` (ticket, author, text): an internal note, kept
        (once) for the ticket's transcript."""

        def write(tx: DeskTx) -> bool:
            first = tx.see_thread_message(thread_id, message_id)
            if first and note is not None:
                tx.keep_note(*note)
            return first

        return await self.run(write, now)

    async def transcript(
        self, ticket_id: int
    ) -> tuple[Ticket, list[Any], list[tuple[float, str, str]]] | None:
        """A ticket, its conversation's turns and its internal notes (at, author, text), in one
        snapshot."""

        def read(c: Connection) -> tuple[Ticket, list[Any], list[tuple[float, str, str]]] | None:
            ticket = ticket_sql(c, ticket_id)
            if ticket is None:
                return None
            turns = c.execute(
                "SELECT created_at, kind, content, data FROM turns WHERE conversation_id = ? AND"
                " kind IN ('customer', 'assistant', 'operator', 'system') AND status != 'ignored'"
                " ORDER BY id",
                (ticket.conversation_id,),
            ).fetchall()
            notes = c.execute(
                "SELECT created_at, author, content FROM thread_notes WHERE ticket_id = ? ORDER"
                " BY id",
                (ticket_id,),
            ).fetchall()
            return ticket, list(turns), [(n[0], n[1], n[2]) for n in notes]

        return await self.db.read(read)

    async def catch_up_points(
        self, active_since: float
    ) -> tuple[list[tuple[int, int | None]], list[tuple[int, int]]]:
        """Where reading resumes after a start: (DM channel, newest customer message stored, or None
        for a channel never read back: then from ``active_since``) for customers who wrote since
        ``active_since``, and (thread, newest operator message handled, else the thread's start) for
        every ticket still open. One snapshot, taken before the gateway delivers anything new."""

        def read(c: Connection) -> tuple[list[tuple[int, int | None]], list[tuple[int, int]]]:
            dms = c.execute(
                "SELECT c.dm_channel_id, CASE WHEN c.dm_read_back = 1 THEN"
                " MAX(t.discord_message_id) END FROM customers c JOIN turns t ON t.customer_id ="
                " c.id AND t.kind = 'customer' AND t.discord_message_id IS NOT NULL WHERE"
                " c.dm_channel_id IS NOT NULL AND c.agent_name IS NULL GROUP BY c.id HAVING"
                " MAX(t.created_at) >= ?",
                (active_since,),
            ).fetchall()
            threads = c.execute(
                "SELECT t.thread_id, COALESCE((SELECT MAX(s.message_id) FROM thread_messages_seen"
                " s WHERE s.thread_id = t.thread_id), t.thread_id) FROM tickets t WHERE"
                f" t.thread_id IS NOT NULL AND t.{NOT_ENDED_SQL}"
            ).fetchall()
            return [(r[0], r[1]) for r in dms], [(r[0], r[1]) for r in threads]

        return await self.db.read(read)

    async def known_messages(self, message_ids: Sequence[int]) -> set[int]:
        """Which of these Discord messages were handled already (a customer's stored DM, a thread
        message)."""
        if not message_ids:
            return set()
        marks = ",".join("?" * len(message_ids))
        rows = await self.db.fetchall(
            f"SELECT discord_message_id FROM turns WHERE discord_message_id IN ({marks}) UNION"
            f" SELECT message_id FROM thread_messages_seen WHERE message_id IN ({marks})",
            [*message_ids, *message_ids],
        )
        return {r[0] for r in rows}

    async def quiet_tickets(self, quiet_since: float) -> list[tuple[int, float | None, float]]:
        """Customers' unclosed tickets with nothing said since ``quiet_since`` (no message from the
        customer, in any conversation, and no operator's in the ticket's): (ticket, when the closing
        notice was sent or None, last activity)."""
        rows = await self.db.fetchall(
            # The latest of three times, in SQL both engines speak (SQLite's MAX(a, b, c) is
            # PostgreSQL's GREATEST).
            "SELECT * FROM (SELECT t.id, t.auto_close_warned_at AS warned, (SELECT MAX(at) FROM"
            " (SELECT t.created_at AS at UNION ALL SELECT MAX(u.created_at) FROM turns u WHERE"
            " u.customer_id = t.customer_id AND u.kind = 'customer' UNION ALL SELECT"
            " MAX(o.created_at) FROM turns o WHERE o.conversation_id = t.conversation_id AND"
            " o.kind = 'operator') AS times) AS active FROM tickets t JOIN customers c ON c.id ="
            f" t.customer_id WHERE t.{NOT_ENDED_SQL} AND c.agent_name IS NULL AND t.created_at <="
            " ?) AS open_tickets WHERE active <= ? OR warned IS NOT NULL",
            (quiet_since, quiet_since),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def dm_read_back(self, channel_id: int) -> None:
        """A DM channel was read back once: from now on reading resumes after its newest stored
        message."""
        await self.db.execute(
            "UPDATE customers SET dm_read_back = 1 WHERE dm_channel_id = ?", (channel_id,)
        )

    async def expiry_deadlines(self) -> list[tuple[str, float]]:
        """(job id, due) of every agent's approval request still open with an expiry."""
        rows = await self.db.fetchall(
            "SELECT 'agent-approval:' || id, expires_at FROM tickets WHERE status = 'open'"
            " AND expires_at IS NOT NULL"
        )
        return [(r[0], r[1]) for r in rows]

    async def escalate_due(
        self, now: float, steps: list[tuple[float, int]], text: Callable[[int, int], str]
    ) -> list[tuple[int, float | None]]:
        """Open tickets nobody has answered or decided that reached their next [desk] escalation
        step(s): each step mentions its role once (``text(ticket_id, level)``), in order, even when
        several fell due while the bot was down. Returns (ticket, when its next step is due)."""
        unanswered = (
            "status = 'open' AND first_response_at IS NULL AND kind != 'notice'"
            " AND escalation_level < ?"
        )

        def write(c: Connection) -> list[tuple[int, float | None]]:
            done: list[tuple[int, float | None]] = []
            rows = c.execute(
                f"SELECT id, created_at, escalation_level FROM tickets WHERE {unanswered}"
                " AND created_at <= ?",
                (len(steps), now - steps[0][0]),
            ).fetchall()
            for ticket_id, created_at, level in rows:
                reached = level
                while reached < len(steps) and created_at + steps[reached][0] <= now:
                    reached += 1
                if (
                    reached == level
                    or not c.execute(
                        "UPDATE tickets SET escalation_level = ?, escalated_at = ? WHERE id = ? AND"
                        " escalation_level = ?",
                        (reached, now, ticket_id, level),
                    ).rowcount
                ):
                    continue
                for step in range(level + 1, reached + 1):
                    role = steps[step - 1][1]
                    desk_post_sql(
                        c, ticket_id, DeskOp.ESCALATE, now, f"{role}\n{text(ticket_id, step)}"
                    )
                    audit_sql(
                        c,
                        now,
                        "system",
                        "ticket_escalated",
                        f"ticket:{ticket_id}",
                        {"level": step, "role_id": role},
                    )
                desk_post_sql(c, ticket_id, DeskOp.REFRESH, now, "")
                following = created_at + steps[reached][0] if reached < len(steps) else None
                done.append((ticket_id, following))
            return done

        return await self.db.run(write)

    async def escalation_deadlines(self, steps: list[tuple[float, int]]) -> list[tuple[str, float]]:
        """(job id, due) of each unanswered ticket's next escalation step."""
        if not steps:
            return []
        rows = await self.db.fetchall(
            "SELECT id, created_at, escalation_level FROM tickets WHERE status = 'open' AND"
            " first_response_at IS NULL AND kind != 'notice' AND escalation_level < ?",
            (len(steps),),
        )
        return [(f"ticket-escalation:{r[0]}", r[1] + steps[r[2]][0]) for r in rows]

    async def pending_deadlines(self) -> list[tuple[str, float]]:
        """(job id, due) of every ticket deadline still to come: reminders and timeouts."""
        rows = await self.db.fetchall(
            "SELECT 'ticket-reminder:' || id, reminder_due_at FROM tickets WHERE reminded_at IS"
            " NULL AND reminder_due_at IS NOT NULL AND status != 'closed' UNION ALL SELECT"
            " 'ticket-timeout:' || id, timeout_due_at FROM tickets WHERE timed_out_at IS NULL AND"
            " timeout_due_at IS NOT NULL AND status != 'closed'"
        )
        return [(r[0], r[1]) for r in rows]

    async def set_posted(
        self, ticket_id: int, *, message_id: int | None = None, thread_id: int | None = None
    ) -> None:
        if message_id is not None:
            await self.db.execute(
                "UPDATE tickets SET staff_message_id = ? WHERE id = ?", (message_id, ticket_id)
            )
        if thread_id is not None:
            await self.db.execute(
                "UPDATE tickets SET thread_id = ? WHERE id = ?", (thread_id, ticket_id)
            )
