"""What every part of the desk shares: the records it hands out, its dependencies, and its reads."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from core.actions import ActionRegistry
from core.clock import Clock
from core.files import IMAGES
from core.hours import SupportHours
from core.outbox import Outbox
from core.policy import Policy
from core.transcript import WHO, Attached, Line, render_html
from storage.conversations import ConversationStore
from storage.db import Store
from storage.drafts import DraftStore
from storage.files import FileStore, StoredFile
from storage.records import Kind, Priority, Source, Ticket
from storage.sql import audit
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from core.desk_outbox import DeskOutbox
    from core.steps.codes import OperatorCodes


@dataclass(frozen=True)
class Operator:
    id: int
    name: str

    @property
    def actor(self) -> str:
        return f"operator:{self.id}"


@dataclass(frozen=True)
class DeskReply:
    """What the operator who acted is told (ephemerally)."""

    ok: bool
    text: str


ALREADY_HANDLED = DeskReply(False, "")


@dataclass(frozen=True)
class Changed:
    """What a desk transaction hands back: the answer, and the customer whose DMs it owes (kicked
    after the commit). A transaction function returns its result: it never fills a list or a
    variable of its caller."""

    reply: DeskReply
    customer_id: int | None = None


@dataclass(frozen=True)
class Escalation:
    """What the agent hands to a person: a question, a hand-over, or an action to approve."""

    kind: Kind
    source: Source
    question: str
    reason: str = ""
    action_name: str | None = None
    action_summary: str = ""
    action_params: dict[str, Any] | None = None
    decision_type: str | None = None
    tool_use_id: str | None = None
    priority_hint: Priority = Priority.NORMAL


@dataclass(frozen=True)
class Escalated:
    """Where an escalation went: ``number`` None when it was not sent (too many tickets open);
    ``new`` False when it joined a ticket already open."""

    number: int | None
    new: bool


class DeskBase:
    """The desk's dependencies and what its parts share (see ``core.desk``)."""

    def __init__(
        self,
        *,
        db: Store,
        policy: Policy,
        clock: Clock,
        registry: ActionRegistry,
        outbox: Outbox,
        desk_outbox: DeskOutbox,
        arm_ticket: Callable[[int, float | None, float], None],
        operator_codes: OperatorCodes | None,
        ai_enabled: bool,
    ) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock
        self.registry = registry
        self.outbox = outbox
        self.desk_outbox = desk_outbox  # kicked after each commit that owes the staff desk a post
        # arms a new ticket's reminder and timeout (Deadlines.arm_ticket)
        self.arm_ticket = arm_ticket
        # codes on: approving a large amount needs the operator's own code
        self.operator_codes = operator_codes
        self.ai_enabled = ai_enabled
        self.tickets = TicketStore(db)
        self.drafts = DraftStore(db)
        self.conversations = ConversationStore(db)
        self._thread_tickets: dict[int, int] = {}
        # told each ticket whose row changed (agents waiting)
        self.on_changed: list[Callable[[int], None]] = []
        # told each new ticket, after its commit (the copilot drafts an answer)
        self.on_opened: list[Callable[[int], None]] = []
        self.hours = SupportHours(policy.desk.hours, policy.desk.timezone)
        self.tz = ZoneInfo(policy.summary.timezone)  # how transcripts show times

    async def transcript(
        self, ticket_id: int, *, for_customer: bool = False
    ) -> tuple[str, bytes] | None:
        """(file name, HTML) of a ticket's conversation: the staff's copy with its internal notes,
        or the customer's without them."""
        found = await self.tickets.transcript(ticket_id)
        if found is None:
            return None
        ticket, turns, notes = found
        attached = [_attached(t["data"]) for t in turns]
        kept = await FileStore(self.db).get(
            a["file_id"] for files in attached for a in files if "file_id" in a
        )
        lines = [
            Line(
                t["created_at"],
                t["kind"],
                _speaker(t, ticket.customer_name),
                t["content"],
                tuple(_shown(a, kept) for a in files),
            )
            for t, files in zip(turns, attached, strict=True)
        ]
        lines += [Line(at, "note", author, text) for at, author, text in notes]
        page = render_html(
            f"Ticket #{ticket.id} · {ticket.kind.value} · {ticket.customer_name}",
            lines,
            for_customer=for_customer,
            tz=self.tz,
        )
        return f"ticket-{ticket.id}-transcript.html", page.encode()

    def _after_hours(self, now: float) -> str:
        """What a customer is told under a new ticket's number when nobody is at the desk now."""
        if self.hours.is_open(now):
            return ""
        return "\n" + self.policy.message("after_hours", when=self.hours.describe_next(now))

    def _due(self, now: float) -> tuple[float | None, float]:
        """When a new ticket gets its reminder (half the answer time) and its timeout."""
        timeouts = self.policy.timeouts
        seconds = timeouts.ticket_answer_seconds
        return (now + seconds / 2 if timeouts.reminder else None), now + seconds

    def _arm(self, ticket_id: int, reminder: float | None, timeout: float) -> None:
        self.arm_ticket(ticket_id, reminder, timeout)

    def opened(self, ticket_id: int) -> None:
        """A new ticket was committed: tell who drafts for it (the copilot)."""
        for hook in self.on_opened:
            hook(ticket_id)

    def kick(self, ticket_id: int) -> None:
        """Deliver what a change owes the staff desk for this ticket, and tell whoever waits on
        it."""
        self._kick(ticket_id)

    def _kick(self, ticket_id: int, customer_id: int | None = None) -> None:
        # The customer's DM first: its worker then queues its database read before the card's
        # re-render.
        if customer_id is not None:
            self.outbox.kick(customer_id)
        self.desk_outbox.kick(ticket_id)
        for changed in self.on_changed:
            changed(ticket_id)

    async def pending(self) -> list[Ticket]:
        return await self.tickets.unclosed()

    async def ticket_for_thread(self, thread_id: int) -> Ticket | None:
        return await self.tickets.by_thread(thread_id)

    async def audit_refusal(self, user: Operator, what: str, ticket_id: int | None) -> None:
        await audit(
            self.db,
            self.clock.now(),
            f"user:{user.id}",
            "refused_not_operator",
            f"ticket:{ticket_id}" if ticket_id else None,
            {"attempted": what, "name": user.name},
        )

    def _decided_text(self, ticket: Ticket) -> str:
        who = f" by {ticket.decided_by_name}" if ticket.decided_by_name else ""
        return f"Ticket #{ticket.id} was already {ticket.status}{who}."

    async def ticket(self, ticket_id: int) -> Ticket | None:
        """A ticket as it is now (the cogs read tickets through the desk, never storage)."""
        return await self.tickets.get(ticket_id)


INLINE_IMAGE = 1024 * 1024  # larger pictures are listed, not embedded in the page


def _attached(data: Any) -> list[dict[str, Any]]:
    """A turn's files: a customer's attachments, or the names an operator sent."""
    found = json.loads(data) if isinstance(data, str) else (data or {})
    return list(found.get("attachments") or []) + [
        {"filename": name, "size": 0} for name in found.get("files") or []
    ]


def _shown(entry: dict[str, Any], kept: Mapping[int, StoredFile]) -> Attached:
    file = kept.get(entry.get("file_id") or 0)
    if file is not None and file.media_type in IMAGES and file.size <= INLINE_IMAGE:
        return Attached(file.filename, file.size, (file.media_type, file.data))
    return Attached(str(entry.get("filename", "file")), int(entry.get("size") or 0))


def _speaker(turn: Mapping[str, Any], customer_name: str) -> str:
    """Who said a turn, as a transcript shows it: the operator by name, else the customer or the
    kind of speaker."""
    operator = json.loads(turn["data"]).get("operator_name") if turn["data"] else None
    if operator:
        return str(operator)
    return customer_name if turn["kind"] == "customer" else WHO[turn["kind"]]
