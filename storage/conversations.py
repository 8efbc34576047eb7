"""Customers, conversations, turns, the outbox and the audit log: the conversation core's tables.

Each write is one transaction run by ``Database.run`` in aiosqlite's thread (one round trip); the
small ``_sql`` helpers below take the connection of that transaction (``storage.db.Connection``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Store
from storage.files import insert_file_sql
from storage.knowledge import record_uses_sql
from storage.records import DeskOp
from storage.sql import (
    audit_sql,
    customer_sql,
    desk_post_sql,
    enqueue_sql,
    takeover_ticket_sql,
    to_json,
)


@dataclass(frozen=True)
class Turn:
    id: int
    conversation_id: int
    customer_id: int
    kind: str
    content: str
    data: Any
    status: str
    attempts: int
    created_at: float
    # a customer's message: its Discord id (a snowflake: when it was sent)
    discord_message_id: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> Turn:
        return cls(
            id=row["id"],
            conversation_id=row["conversation_id"],
            customer_id=row["customer_id"],
            kind=row["kind"],
            content=row["content"],
            data=json.loads(row["data"]) if row["data"] else None,
            status=row["status"],
            attempts=row["attempts"],
            created_at=row["created_at"],
            discord_message_id=row["discord_message_id"],
        )


@dataclass(frozen=True)
class Customer:
    id: int
    discord_id: int
    display_name: str
    dm_status: str
    confirming: bool = False  # a confirmation waits for this customer's yes or no
    # their DM channel, once a message of theirs (or a DM we opened) showed it
    dm_channel_id: int | None = None


@dataclass(frozen=True)
class Inbound:
    customer: Customer
    conversation_id: int
    turn_id: int
    duplicate: bool
    relayed_to: int | None = None  # the ticket whose operator gets this message (a take-over)
    # "blocked", "too fast" or "too new": stored as "ignored": never shown to Claude
    held_by: str | None = None


def _keep_files(
    c: Connection, customer_id: int, turn_id: int, data: Any, files: Sequence[Any], now: float
) -> list[int]:
    """The message's taken files, written beside its turn; the turn's attachments get their ids."""
    attached = (data or {}).get("attachments") or []
    kept = []
    for entry in attached:
        index = entry.pop("store", None)
        if index is None:
            continue
        file = files[index]
        entry["file_id"] = insert_file_sql(
            c,
            customer_id,
            "customer",
            file.filename,
            file.media_type,
            file.size,
            file.readable,
            file.data,
            now,
            turn_id=turn_id,
        )
        kept.append(entry["file_id"])
    if kept:
        c.execute("UPDATE turns SET data = ? WHERE id = ?", (to_json(data), turn_id))
    return kept


@dataclass(frozen=True)
class Gate:
    """What keeps a message from Claude and the desk, decided in the transaction that stores it."""

    # more customer messages than this within a minute (by Discord's clock): too fast
    per_minute: int
    sent_at: float  # when Discord says the message was sent (from its id), epoch seconds
    too_new: bool  # the Discord account is younger than [abuse] min_account_age_days
    blocked_text: str
    slow_text: str
    new_text: str


@dataclass(frozen=True)
class NewTurn:
    kind: str
    content: str = ""
    data: Any = None
    status: str = "done"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    customer_id: int
    discord_id: int
    content: str
    attempts: int
    buttons: list[dict[str, Any]] | None = None
    dm_channel_id: int | None = None  # None: no DM channel known yet (open one, once, and keep it)
    file: tuple[str, bytes] | None = None  # (name, content) sent with the last chunk
    # ("edit" | "delete", the DM message): not a new message but a change of one already sent
    change: tuple[str, int] | None = None


@dataclass(frozen=True)
class RelayedCopies:
    """An operator's message relayed to a customer: its turn, and its DM copies as sent so far."""

    turn_id: int
    customer_id: int
    operator_name: str
    text: str  # what the customer and Claude have now (the operator's words, as last edited)
    # (outbox status, DM message id, the text it carries), in order: the text first (split into
    # DMs of 2000 characters when sent; the id is its last one's), then one per further file
    copies: list[tuple[str, int | None, str]]


def insert_turns_sql(
    c: Connection,
    conversation_id: int,
    customer_id: int,
    turns: Sequence[NewTurn],
    now: float,
    *,
    after_turn_id: int | None = None,
) -> list[int]:
    """Store turns; ``after_turn_id`` places them right after that turn in conversation order."""
    return [
        c.execute(
            "INSERT INTO turns (conversation_id, customer_id, kind, content, data, status,"
            " anchor_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                conversation_id,
                customer_id,
                t.kind,
                t.content,
                to_json(t.data),
                t.status,
                after_turn_id,
                now,
            ),
        ).fetchone()[0]
        for t in turns
    ]


def set_status_sql(c: Connection, turn_ids: Sequence[int], status: str) -> None:
    marks = ",".join("?" * len(turn_ids))
    c.execute(
        f"UPDATE turns SET status = ? WHERE id IN ({marks}) AND status = 'pending'",
        [status, *turn_ids],
    )


def current_conversation_sql(c: Connection, customer_id: int, fallback: int, now: float) -> int:
    """The customer's open conversation (kept alive: an operator writing counts as activity)."""
    row = c.execute(
        "SELECT id FROM conversations WHERE customer_id = ? AND ended_at IS NULL ORDER BY id DESC"
        " LIMIT 1",
        (customer_id,),
    ).fetchone()
    conversation_id = row[0] if row else fallback
    c.execute(
        "UPDATE conversations SET last_activity_at = CASE WHEN last_activity_at > ? THEN"
        " last_activity_at ELSE ? END WHERE id = ?",
        (now, now, conversation_id),
    )
    return conversation_id


def tell_customer_sql(
    c: Connection,
    customer_id: int,
    conversation_id: int,
    text: str,
    turn: NewTurn,
    now: float,
    files: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Tell the customer ``text`` (owed through the outbox) and store ``turn`` in their current
    conversation, so Claude sees what happened; in the caller's transaction. ``files`` (name,
    bytes): the first goes with the text (one upload), each other in a DM of its own."""
    current = current_conversation_sql(c, customer_id, conversation_id, now)
    [turn_id] = insert_turns_sql(c, current, customer_id, [turn], now)
    first = files[0] if files else None
    enqueue_sql(c, customer_id, turn_id, [text], now, file=first)  # split when it is sent
    for name, data in files[1:]:
        enqueue_sql(c, customer_id, turn_id, [f"📎 {name}"], now, file=(name, data))


def history_sql(
    c: Connection, conversation_id: int, *, limit: int, kinds: Sequence[str] = ()
) -> list[Turn]:
    """The last ``limit`` turns of a conversation in conversation order (see ``anchor_id``), oldest
    first."""
    only = f" AND kind IN ({','.join('?' * len(kinds))})" if kinds else ""
    rows = c.execute(
        "SELECT * FROM (SELECT *, COALESCE(anchor_id, id) AS position FROM turns WHERE"
        f" conversation_id = ? AND status != 'ignored'{only} ORDER BY position DESC, id DESC LIMIT"
        " ?) AS recent ORDER BY position, id",
        (conversation_id, *kinds, limit),
    ).fetchall()
    return [Turn.from_row(r) for r in rows]


@dataclass(frozen=True)
class PendingWork:
    """What a customer's worker reads in one snapshot: who, what waits for an answer, and its
    history."""

    customer: Customer | None
    turns: list[Turn]
    history: list[Turn]


DISCORD_EPOCH_MS = 1420070400000


def _gate_sql(
    c: Connection, customer_id: int, gate: Gate, message_id: int | None, now: float
) -> str | None:
    """Blocked, too new or too fast: the customer is told once (per block, per minute), the message
    held."""
    row = c.execute(
        "SELECT blocked_until, block_told, slow_told_at FROM customers WHERE id = ?", (customer_id,)
    ).fetchone()
    blocked = row["blocked_until"] is not None and row["blocked_until"] > now
    if blocked or gate.too_new:  # told once (a new block tells again)
        if not row["block_told"]:
            told = gate.blocked_text if blocked else gate.new_text
            c.execute("UPDATE customers SET block_told = 1 WHERE id = ?", (customer_id,))
            enqueue_sql(c, customer_id, None, [told], now)
        return "blocked" if blocked else "too new"
    if message_id is None or not gate.per_minute:
        return None
    # By Discord's clock (the ids), so messages read back after a start are judged by when they were
    # sent.
    # Every stored message of the minute either side counts, a later one stored first too (messages
    # sent together are stored in any order): the first per_minute stored are answered, no more.
    sent_ms = int(gate.sent_at * 1000) - DISCORD_EPOCH_MS
    since, until = (sent_ms - 60_000) << 22, (sent_ms + 60_000) << 22
    # Every message counts, one-time codes too: a flood of six digits is a flood.
    [recent] = c.execute(
        "SELECT COUNT(*) FROM turns WHERE customer_id = ? AND kind = 'customer'"
        " AND discord_message_id > ? AND discord_message_id < ? AND discord_message_id <> ?",
        (customer_id, since, until, message_id),
    ).fetchone()
    if recent < gate.per_minute:
        return None
    if row["slow_told_at"] is None or row["slow_told_at"] <= now - 60:
        c.execute("UPDATE customers SET slow_told_at = ? WHERE id = ?", (now, customer_id))
        enqueue_sql(c, customer_id, None, [gate.slow_text], now)
    return "too fast"


class ConversationStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def record_inbound(
        self,
        *,
        discord_id: int,
        display_name: str,
        content: str,
        data: Any,
        discord_message_id: int | None,
        now: float,
        idle_seconds: float,
        status: str = "pending",
        dm_channel_id: int | None = None,
        gate: Gate | None = None,
        one_time_code: bool = False,
        files: Sequence[Any] = (),
    ) -> Inbound:
        """Store a customer's DM as a turn, first of all. Starts a conversation after
        ``idle_seconds`` of silence.

        A Discord message already stored (a redelivered gateway event) is not stored twice. While an
        operator has taken over (or in no-AI relay mode), the message goes to their ticket's thread
        instead of Claude, in the same transaction.
        """

        def write(c: Connection) -> Inbound:
            # A customer who writes to us can receive DMs again, so this also reopens closed DMs.
            customer_id, customer_channel = c.execute(
                "INSERT INTO customers (discord_id, display_name, dm_channel_id, created_at) VALUES"
                " (?, ?, ?, ?) ON CONFLICT (discord_id) DO UPDATE SET display_name ="
                " excluded.display_name, dm_status = 'open', dm_closed_at = NULL, dm_channel_id ="
                " COALESCE(excluded.dm_channel_id, customers.dm_channel_id) RETURNING id,"
                " dm_channel_id",
                (discord_id, display_name, dm_channel_id, now),
            ).fetchone()
            customer = Customer(
                customer_id, discord_id, display_name, "open", dm_channel_id=customer_channel
            )
            if discord_message_id is not None:
                dup = c.execute(
                    "SELECT id, conversation_id FROM turns WHERE discord_message_id = ?",
                    (discord_message_id,),
                ).fetchone()
                if dup is not None:
                    return Inbound(customer, dup["conversation_id"], dup["id"], duplicate=True)
            conv = c.execute(
                "SELECT id, last_activity_at FROM conversations WHERE customer_id = ? AND ended_at"
                " IS NULL ORDER BY id DESC LIMIT 1",
                (customer_id,),
            ).fetchone()
            new = conv is None or now - conv["last_activity_at"] > idle_seconds
            if new:
                if conv is not None:
                    c.execute(
                        "UPDATE conversations SET ended_at = ? WHERE id = ?",
                        (conv["last_activity_at"], conv["id"]),
                    )
                conversation_id = c.execute(
                    "INSERT INTO conversations (customer_id, started_at, last_activity_at) VALUES"
                    " (?, ?, ?) RETURNING id",
                    (customer_id, now, now),
                ).fetchone()[0]
            else:
                conversation_id = conv["id"]
                c.execute(
                    "UPDATE conversations SET last_activity_at = ? WHERE id = ?",
                    (now, conversation_id),
                )
            c.execute(
                "UPDATE tickets SET dm_closed_at = NULL WHERE customer_id = ? AND dm_closed_at IS"
                " NOT NULL",
                (customer_id,),
            )
            held_by = _gate_sql(c, customer_id, gate, discord_message_id, now) if gate else None
            relay_to = takeover_ticket_sql(c, customer_id) if held_by is None else None
            turn_id = c.execute(
                "INSERT INTO turns (conversation_id, customer_id, kind, content, data,"
                " discord_message_id, status, one_time_code, created_at) VALUES (?, ?, 'customer',"
                " ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    conversation_id,
                    customer_id,
                    content,
                    to_json(data),
                    discord_message_id,
                    "ignored" if held_by else "relayed" if relay_to is not None else status,
                    int(one_time_code),
                    now,
                ),
            ).fetchone()[0]
            kept = _keep_files(c, customer_id, turn_id, data, files, now)
            if held_by is not None:
                return Inbound(customer, conversation_id, turn_id, duplicate=False, held_by=held_by)
            if relay_to is not None:
                desk_post_sql(
                    c, relay_to, DeskOp.POST, now, f"**{display_name}:** {content}".strip()
                )
                for file_id in kept:  # re-posted as files: Discord's links would expire
                    desk_post_sql(c, relay_to, DeskOp.FILE, now, str(file_id))
            return Inbound(customer, conversation_id, turn_id, duplicate=False, relayed_to=relay_to)

        return await self.db.run(write)

    async def operator_copies(self, thread_message_id: int) -> RelayedCopies | None:
        """The operator turn relayed from this thread message and its DM copies; None if it was
        never relayed."""
        marker = f'"thread_message_id": {int(thread_message_id)}'
        row = await self.db.fetchone(
            "SELECT id, customer_id, data, content FROM turns WHERE kind = 'operator' AND (data"
            " LIKE ? OR data LIKE ?)",
            (f"%{marker},%", f"%{marker}}}%"),
        )
        if row is None:
            return None
        name = str(json.loads(row[2]).get("operator_name", "")) if row[2] else ""
        rows = await self.db.fetchall(
            "SELECT status, discord_message_id, content FROM outbox WHERE turn_id = ? AND change IS"
            " NULL ORDER BY id",
            (row[0],),
        )
        return RelayedCopies(row[0], row[1], name, row[3], [(r[0], r[1], r[2]) for r in rows])

    async def operator_changed(
        self,
        relayed: RelayedCopies,
        content: str | None,
        outbox_content: str | None,
        changes: Sequence[tuple[str, int]],
        now: float,
    ) -> None:
        """An operator edited (``content``) or deleted (None) a relayed message: the turn takes
        it (Claude reads what the customer now sees); copies not sent yet are rewritten or
        withdrawn; ``changes`` to copies already sent (edit or delete, DM message id) are owed
        through the outbox, after what it owes the customer already."""

        def write(c: Connection) -> None:
            turn_id = relayed.turn_id
            c.execute(
                "UPDATE turns SET content = ? WHERE id = ?",
                (content if content is not None else "(deleted by the operator)", turn_id),
            )
            if outbox_content is None:  # never sent: the customer never sees it
                c.execute(
                    "UPDATE outbox SET status = 'failed', last_error = ? WHERE turn_id = ? AND"
                    " status = 'pending' AND change IS NULL",
                    ("deleted by the operator before it was sent", turn_id),
                )
            else:
                c.execute(
                    "UPDATE outbox SET content = ? WHERE turn_id = ? AND status = 'pending' AND"
                    " change IS NULL",
                    (outbox_content, turn_id),
                )
            for kind, dm in changes:
                if (
                    kind == "edit"
                    and c.execute(
                        # an edit not made yet takes the latest text: one request, not one per edit
                        "UPDATE outbox SET content = ? WHERE change = 'edit' AND change_of = ? AND"
                        " status = 'pending'",
                        (outbox_content, dm),
                    ).rowcount
                ):
                    continue
                c.execute(
                    "INSERT INTO outbox (customer_id, turn_id, content, change, change_of,"
                    " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (relayed.customer_id, turn_id, outbox_content or "", kind, dm, now, now),
                )

        await self.db.run(write)

    async def customer_edited(
        self, discord_message_id: int, content: str, now: float
    ) -> tuple[str, int | None, str] | None:
        """A customer edited a DM we stored: a message still waiting for an answer takes the new
        text (Claude reads the latest); a relayed one (a take-over) gets "edited" in the ticket's
        thread. Returns (the turn's status, the thread's ticket, the customer's name), or None."""

        def write(c: Connection) -> tuple[str, int | None, str] | None:
            row = c.execute(
                "SELECT t.id, t.status, t.content, t.customer_id, c.display_name FROM turns t JOIN"
                " customers c ON c.id = t.customer_id WHERE t.discord_message_id = ? AND t.kind ="
                " 'customer'",
                (discord_message_id,),
            ).fetchone()
            if row is None or row["content"] == content or row["status"] == "ignored":
                return None
            if row["status"] == "pending":
                c.execute("UPDATE turns SET content = ? WHERE id = ?", (content, row["id"]))
                return "pending", None, row["display_name"]
            ticket = takeover_ticket_sql(c, row["customer_id"])
            if row["status"] == "relayed" and ticket is not None:
                text = f"✏️ **{row['display_name']}** edited a message: {content}"
                desk_post_sql(c, ticket, DeskOp.POST, now, text)
            return row["status"], ticket, row["display_name"]

        return await self.db.run(write)

    async def pending_turns(self, customer_id: int, *, history_limit: int = 0) -> PendingWork:
        """The customer, their messages waiting for an answer (oldest first) and, with
        ``history_limit``, the oldest waiting conversation's last turns: one read snapshot, so the
        messages answered and the history Claude reads are the same set (a message arriving
        meanwhile waits for the next round)."""

        def read(c: Connection) -> PendingWork:
            rows = c.execute(
                "SELECT t.*, c.discord_id, c.display_name, c.dm_status, c.dm_channel_id, EXISTS"
                " (SELECT 1 FROM confirmations f WHERE f.customer_id = c.id AND f.status ="
                " 'pending') AS confirming FROM customers c LEFT JOIN turns t ON t.customer_id ="
                " c.id AND t.status = 'pending' WHERE c.id = ? ORDER BY t.id",
                (customer_id,),
            ).fetchall()
            if not rows:
                return PendingWork(None, [], [])
            first = rows[0]
            customer = Customer(
                customer_id,
                first["discord_id"],
                first["display_name"],
                first["dm_status"],
                bool(first["confirming"]),
                first["dm_channel_id"],
            )
            pending = [Turn.from_row(r) for r in rows if r["id"] is not None]
            history = (
                history_sql(c, pending[0].conversation_id, limit=history_limit)
                if pending and history_limit
                else []
            )
            return PendingWork(customer, pending, history)

        return await self.db.read(read)

    async def open_ticket_of_source(self, customer_id: int, source: str) -> int | None:
        """The customer's open ticket of that source, if any."""
        row = await self.db.fetchone(
            "SELECT id FROM tickets WHERE customer_id = ? AND source = ? AND status != 'closed'"
            " ORDER BY id DESC LIMIT 1",
            (customer_id, source),
        )
        return int(row[0]) if row else None

    async def customers_with_pending_turns(self) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT customer_id FROM turns WHERE status = 'pending'"
        )
        return [r[0] for r in rows]

    async def history(
        self, conversation_id: int, *, limit: int, kinds: Sequence[str] = ()
    ) -> list[Turn]:
        """The last ``limit`` turns of a conversation in conversation order (see ``anchor_id``),
        oldest first."""
        return await self.db.read(
            lambda c: history_sql(c, conversation_id, limit=limit, kinds=kinds)
        )

    async def owe(
        self,
        customer_id: int,
        chunks: Sequence[str],
        now: float,
        *,
        reason: str,
        turn_id: int | None = None,
    ) -> None:
        """A message the bot wrote itself (not Claude), owed through the outbox and audited."""

        def write(c: Connection) -> None:
            enqueue_sql(c, customer_id, turn_id, chunks, now)
            audit_sql(c, now, "bot", "notice", f"customer:{customer_id}", {"reason": reason})

        await self.db.run(write)

    async def owe_file(
        self, customer_id: int, text: str, name: str, data: bytes, now: float, *, reason: str
    ) -> None:
        """A DM with a file (a transcript), owed through the outbox and audited."""

        def write(c: Connection) -> None:
            enqueue_sql(c, customer_id, None, [text], now, file=(name, data))
            audit_sql(
                c, now, "bot", "notice", f"customer:{customer_id}", {"reason": reason, "file": name}
            )

        await self.db.run(write)

    async def block(
        self,
        discord_id: int,
        display_name: str,
        until: float | None,
        reason: str,
        actor: str,
        now: float,
    ) -> int:
        """Block a user (a row is made if they never wrote), until ``until`` (None: unblock);
        audited. Returns the customer id."""

        def write(c: Connection) -> int:
            customer_id = customer_sql(c, discord_id, display_name, now)["id"]
            c.execute(
                "UPDATE customers SET blocked_until = ?, blocked_reason = ?, block_told = 0 WHERE"
                " id = ?",
                (until, reason if until is not None else None, customer_id),
            )
            audit_sql(
                c,
                now,
                actor,
                "blocked" if until is not None else "unblocked",
                f"customer:{customer_id}",
                {"reason": reason, "until": until},
            )
            return customer_id

        return await self.db.run(write)

    async def blocked_until(self, discord_id: int) -> float | None:
        row = await self.db.fetchone(
            "SELECT blocked_until FROM customers WHERE discord_id = ?", (discord_id,)
        )
        return row[0] if row else None

    async def record_round(
        self,
        conversation_id: int,
        customer_id: int,
        turns: Sequence[NewTurn],
        now: float,
        after_turn_id: int,
    ) -> None:
        await self.db.run(
            lambda c: insert_turns_sql(
                c, conversation_id, customer_id, turns, now, after_turn_id=after_turn_id
            )
        )

    async def complete_answer(
        self,
        batch: Sequence[Turn],
        final_turn: NewTurn,
        chunks: Sequence[str],
        now: float,
        buttons: list[dict[str, Any]] | None = None,
        uses: Sequence[tuple[int, str, str]] = (),
    ) -> None:
        """Claude's answer, the messages it answers marked answered, the DMs owed, and the
        knowledge passages it rests on (``uses``: id, title, origin): one transaction."""
        first = batch[0]

        def write(c: Connection) -> None:
            [turn_id] = insert_turns_sql(
                c,
                first.conversation_id,
                first.customer_id,
                [final_turn],
                now,
                after_turn_id=batch[-1].id,
            )
            set_status_sql(c, [t.id for t in batch], "answered")
            enqueue_sql(c, first.customer_id, turn_id, chunks, now, buttons=buttons)
            if uses:
                record_uses_sql(c, first.conversation_id, uses, now)

        await self.db.run(write)

    async def give_up(self, batch: Sequence[Turn], error: str, now: float) -> None:
        def write(c: Connection) -> None:
            set_status_sql(c, [t.id for t in batch], "held")
            audit_sql(
                c,
                now,
                "system",
                "llm_gave_up",
                f"customer:{batch[0].customer_id}",
                {"turns": [t.id for t in batch], "error": error[:300]},
            )

        await self.db.run(write)

    async def mark_attempt_failed(self, turn_ids: Sequence[int]) -> int:
        """Count a failed answer on these turns; returns the highest attempt count among them."""
        marks = ",".join("?" * len(turn_ids))

        def write(c: Connection) -> int:
            c.execute(
                f"UPDATE turns SET attempts = attempts + 1 WHERE id IN ({marks})", list(turn_ids)
            )
            return int(
                c.execute(
                    f"SELECT MAX(attempts) FROM turns WHERE id IN ({marks})", list(turn_ids)
                ).fetchone()[0]
                or 0
            )

        return await self.db.run(write)


async def close_idle_conversations(
    db: Store, now: float, idle_seconds: float, *, rate_prompt: Callable[[int], str] | None = None
) -> tuple[int, list[int]]:
    """End conversations silent for ``idle_seconds`` (the next message starts a new one); returns
    how many, and the customers owed something. ``rate_prompt``: an AI-only conversation (answered
    by the assistant, no ticket) ends with 1-5 buttons for its customer
    (``rate_prompt(conversation_id)`` above them), once."""

    def write(c: Connection) -> tuple[int, list[int]]:
        # Before they end: the AI-only ones (an answer from the assistant, no ticket), if they are
        # to be rated.
        ai_only = (
            c.execute(
                "SELECT v.id, v.customer_id FROM conversations v JOIN customers c ON c.id ="
                " v.customer_id WHERE v.ended_at IS NULL AND v.last_activity_at < ? AND"
                " c.agent_name IS NULL AND EXISTS (SELECT 1 FROM turns u WHERE u.conversation_id ="
                " v.id AND u.kind = 'assistant') AND NOT EXISTS (SELECT 1 FROM tickets t WHERE"
                " t.conversation_id = v.id)",
                (now - idle_seconds,),
            ).fetchall()
            if rate_prompt
            else []
        )
        closed = c.execute(
            "UPDATE conversations SET ended_at = last_activity_at + ? WHERE ended_at IS NULL"
            " AND last_activity_at < ?",
            (idle_seconds, now - idle_seconds),
        ).rowcount
        for conversation_id, customer_id in ai_only:
            assert rate_prompt is not None  # ai_only is read only when asked to rate
            enqueue_sql(
                c,
                customer_id,
                None,
                [rate_prompt(conversation_id)],
                now,
                buttons=[{"kind": "rating", "subject": f"c{conversation_id}"}],
            )
        return closed, [customer_id for _, customer_id in ai_only]

    return await db.run(write)


class OutboxStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def next_pending(self, customer_id: int) -> OutboxItem | None:
        row = await self.db.fetchone(
            "SELECT o.*, c.discord_id, c.dm_channel_id FROM outbox o JOIN customers c ON c.id ="
            " o.customer_id WHERE o.customer_id = ? AND o.status = 'pending' ORDER BY o.id LIMIT 1",
            (customer_id,),
        )
        if row is None:
            return None
        return OutboxItem(
            row["id"],
            row["customer_id"],
            row["discord_id"],
            row["content"],
            row["attempts"],
            json.loads(row["buttons"]) if row["buttons"] else None,
            row["dm_channel_id"],
            (row["file_name"], bytes(row["file_data"])) if row["file_name"] else None,
            (row["change"], int(row["change_of"])) if row["change"] else None,
        )

    async def keep_dm_channel(self, customer_id: int, channel_id: int) -> None:
        """A DM channel we had to open (no message of theirs showed it): kept, so it is opened
        once."""
        await self.db.execute(
            "UPDATE customers SET dm_channel_id = ? WHERE id = ?", (channel_id, customer_id)
        )

    async def customers_with_pending(self) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT customer_id FROM outbox WHERE status = 'pending'"
        )
        return [r[0] for r in rows]

    async def mark_sent(
        self,
        item_id: int,
        discord_message_id: int | None,
        now: float,
        buttons: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Delivered. A confirmation's question (its buttons) keeps when it first reached the
        customer: a typed answer counts only if the customer sent it after that."""

        def write(c: Connection) -> None:
            c.execute(
                # a file's bytes are not kept once Discord has them (the customer's copy is theirs)
                "UPDATE outbox SET status = 'sent', sent_at = ?, discord_message_id = ?, attempts ="
                " attempts + 1, file_data = NULL WHERE id = ? AND status = 'pending'",
                (now, discord_message_id, item_id),
            )
            for button in buttons or ():
                if button.get("kind") == "confirm":
                    c.execute(
                        "UPDATE confirmations SET prompt_message_id = COALESCE(prompt_message_id,"
                        " ?), prompt_sent_at = COALESCE(prompt_sent_at, ?) WHERE id = ?",
                        (discord_message_id, now, int(button["id"])),
                    )

        await self.db.run(write)

    async def mark_retry(self, item_id: int, error: str, next_attempt_at: float) -> None:
        await self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE"
            " id = ?",
            (error[:500], next_attempt_at, item_id),
        )

    async def mark_failed(self, item: OutboxItem, error: str, now: float) -> None:
        """This one message can never be sent (e.g. Discord rejects its content); the rest go on."""

        def write(c: Connection) -> None:
            c.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE"
                " id = ?",
                (error[:500], item.id),
            )
            audit_sql(
                c,
                now,
                "system",
                "dm_failed",
                f"customer:{item.customer_id}",
                {"outbox_id": item.id, "error": error[:500]},
            )

        await self.db.run(write)

    async def mark_customer_unreachable(self, item: OutboxItem, reason: str, now: float) -> int:
        """DMs are closed: record it on the customer, stop owing them messages. Returns rows
        refused."""

        def write(c: Connection) -> int:
            c.execute(
                "UPDATE customers SET dm_status = 'closed', dm_closed_at = ? WHERE id = ?",
                (now, item.customer_id),
            )
            count = c.execute(
                "UPDATE outbox SET status = 'refused', attempts = attempts + 1, last_error = ?"
                " WHERE customer_id = ? AND status = 'pending'",
                (reason[:500], item.customer_id),
            ).rowcount
            audit_sql(
                c,
                now,
                "system",
                "dm_refused",
                f"customer:{item.customer_id}",
                {"outbox_id": item.id, "reason": reason[:500], "messages_refused": count},
            )
            return count

        return await self.db.run(write)
