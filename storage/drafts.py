"""The copilot's drafted answers: what was suggested on a ticket, and what became of it (sent as
it was, edited and sent, discarded, superseded by a person's own answer). The statements a desk
transaction needs are functions of its connection (``DeskTx`` exposes them); the rest is
``DraftStore``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.db import Connection, Store
from storage.records import DeskOp
from storage.sql import desk_post_sql

COLUMNS = (
    "id, ticket_id, status, text, instructions, requested_by_name, message_id, sent_text,"
    " decided_by_name, decided_at, error, created_at"
)
# a draft an operator may still send; the others have ended
SUGGESTED = "suggested"


@dataclass(frozen=True)
class Draft:
    id: int
    ticket_id: int
    status: str  # drafting, suggested, sent, edited, discarded, superseded, failed
    text: str
    instructions: str | None
    requested_by_name: str | None
    message_id: int | None
    sent_text: str | None
    decided_by_name: str | None
    decided_at: float | None
    error: str | None
    created_at: float

    @classmethod
    def from_row(cls, r: Any) -> Draft:
        return cls(*(r[i] for i in range(12)))


@dataclass(frozen=True)
class DraftFigures:
    """What the summary says of the copilot over a period."""

    sent_unchanged: int
    sent_edited: int
    by_hand: int  # questions and hand-overs answered by a person's own words
    first_response_with_draft: list[float]
    first_response_without_draft: list[float]
    drafts: int
    failed: int


def draft_sql(c: Connection, draft_id: int) -> Draft | None:
    row = c.execute(f"SELECT {COLUMNS} FROM drafts WHERE id = ?", (draft_id,)).fetchone()
    return Draft.from_row(row) if row else None


def decide_draft_sql(
    c: Connection,
    draft_id: int,
    status: str,
    operator_id: int,
    operator_name: str,
    sent_text: str | None,
    now: float,
) -> bool:
    """A suggested draft sent, edited and sent, or discarded: only the first decision wins."""
    return bool(
        c.execute(
            "UPDATE drafts SET status = ?, decided_by = ?, decided_by_name = ?, decided_at = ?,"
            " sent_text = ? WHERE id = ? AND status = 'suggested'",
            (status, operator_id, operator_name, now, sent_text, draft_id),
        ).rowcount
    )


def end_drafts_sql(c: Connection, ticket_id: int, now: float) -> list[int]:
    """The ticket was answered by hand, closed or taken over: its suggested drafts (and those being
    written) are superseded. Returns the ids that had been posted (their buttons go)."""
    posted = [
        r[0]
        for r in c.execute(
            "SELECT id FROM drafts WHERE ticket_id = ? AND status = 'suggested'", (ticket_id,)
        ).fetchall()
    ]
    c.execute(
        "UPDATE drafts SET status = 'superseded', decided_at = ? WHERE ticket_id = ? AND status"
        " IN ('suggested', 'drafting')",
        (now, ticket_id),
    )
    return posted


class DraftStore:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def start(
        self,
        ticket_id: int,
        now: float,
        *,
        instructions: str | None,
        requested_by_name: str | None,
        day_start: float,
        per_day: int,
        automatic: bool,
    ) -> int | None:
        """A draft being written, or None: the day's cap is reached, or (``automatic``) the ticket
        already has one."""

        def write(c: Connection) -> int | None:
            [today] = c.execute(
                "SELECT COUNT(*) FROM drafts WHERE created_at >= ?", (day_start,)
            ).fetchone()
            if today >= per_day:
                return None
            if (
                automatic
                and c.execute("SELECT 1 FROM drafts WHERE ticket_id = ?", (ticket_id,)).fetchone()
            ):
                return None
            [draft_id] = c.execute(
                "INSERT INTO drafts (ticket_id, status, instructions, requested_by_name,"
                " created_at) VALUES (?, 'drafting', ?, ?, ?) RETURNING id",
                (ticket_id, instructions, requested_by_name, now),
            ).fetchone()
            return int(draft_id)

        return await self.db.run(write)

    async def get(self, draft_id: int) -> Draft | None:
        return await self.db.read(lambda c: draft_sql(c, draft_id))

    async def set_message(self, draft_id: int, message_id: int) -> None:
        await self.db.execute(
            "UPDATE drafts SET message_id = ? WHERE id = ?", (message_id, draft_id)
        )

    async def answered_tickets(self, limit: int) -> list[tuple[int, str, str]]:
        """(id, question, answer) of the latest questions a person answered: the copilot's
        "similar answered tickets"."""
        rows = await self.db.fetchall(
            "SELECT id, question, answer FROM tickets WHERE answer IS NOT NULL AND kind IN"
            " ('question', 'agent question', 'handover') ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(int(r[0]), r[1], r[2]) for r in rows]

    async def figures(self, since: float, until: float) -> DraftFigures:
        def read(c: Connection) -> DraftFigures:
            period = (since, until)
            counts = dict(
                c.execute(
                    "SELECT status, COUNT(*) FROM drafts WHERE created_at >= ? AND created_at <= ?"
                    " GROUP BY status",
                    period,
                ).fetchall()
            )
            rows = c.execute(
                "SELECT t.first_response_at - t.created_at, EXISTS (SELECT 1 FROM drafts d WHERE"
                " d.ticket_id = t.id AND d.status IN ('sent', 'edited')) FROM tickets t WHERE"
                " t.created_at >= ? AND t.created_at <= ? AND t.answer IS NOT NULL AND t.kind IN"
                " ('question', 'agent question', 'handover')",
                period,
            ).fetchall()
            with_draft = [float(r[0]) for r in rows if r[1] and r[0] is not None]
            without = [float(r[0]) for r in rows if not r[1] and r[0] is not None]
            return DraftFigures(
                int(counts.get("sent", 0)),
                int(counts.get("edited", 0)),
                sum(1 for r in rows if not r[1]),
                with_draft,
                without,
                sum(int(n) for n in counts.values()),
                int(counts.get("failed", 0)),
            )

        return await self.db.read(read)

    async def finish(self, draft_id: int, ticket_id: int, text: str, now: float) -> bool:
        """The draft's text, suggested and owed to the ticket's thread in one transaction; False
        when the ticket moved on meanwhile (answered, closed, taken over: superseded)."""

        def write(c: Connection) -> bool:
            done = c.execute(
                "UPDATE drafts SET status = 'suggested', text = ? WHERE id = ? AND status ="
                " 'drafting'",
                (text, draft_id),
            ).rowcount
            if done:
                desk_post_sql(c, ticket_id, DeskOp.DRAFT, now, str(draft_id))
            return bool(done)

        return await self.db.run(write)

    async def set_view(self, ticket_id: int, view: str, now: float) -> None:
        """Claude's one-line reading of an approval's case, and the card re-rendered with it."""

        def write(c: Connection) -> None:
            c.execute("UPDATE tickets SET copilot_view = ? WHERE id = ?", (view, ticket_id))
            desk_post_sql(c, ticket_id, DeskOp.REFRESH, now)

        await self.db.run(write)

    async def fail(self, draft_id: int, ticket_id: int, error: str, note: str, now: float) -> None:
        """The draft could not be written: kept with why, and one line in the thread says so."""

        def write(c: Connection) -> None:
            failed = c.execute(
                "UPDATE drafts SET status = 'failed', error = ? WHERE id = ? AND status ="
                " 'drafting'",
                (error[:500], draft_id),
            ).rowcount
            if failed:
                desk_post_sql(c, ticket_id, DeskOp.POST, now, note)

        await self.db.run(write)
