"""The records storage reads and writes, and their vocabulary: one word, one meaning.

Plain data (no database handle, no discord); core works with these, storage fills them from rows.
Values are stored as these strings, and validated here rather than by CHECK constraints, so a new
ticket kind costs a line here, not a table rebuild.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


class Kind(enum.StrEnum):
    QUESTION = "question"
    APPROVAL = "approval"
    HANDOVER = "handover"
    AGENT_QUESTION = "agent question"  # another agent asks a person (MCP ask_human)
    # another agent needs a person's decision (MCP request_approval)
    AGENT_APPROVAL = "agent approval"
    NOTICE = "notice"  # another agent tells the operators something; nothing to decide

    @property
    def decided(self) -> bool:
        """Settled with Approve / Deny rather than answered in words."""
        return self in (Kind.APPROVAL, Kind.AGENT_APPROVAL)

    @property
    def asks_a_question(self) -> bool:
        """A customer's (via the assistant) or an agent's question: its answer can become
        knowledge."""
        return self in (Kind.QUESTION, Kind.AGENT_QUESTION)

    @property
    def answered_in_words(self) -> bool:
        """A person's first message in the thread answers it (a question or a hand-over)."""
        return not self.decided and self is not Kind.NOTICE

    @property
    def from_agent(self) -> bool:
        return self in (Kind.AGENT_QUESTION, Kind.AGENT_APPROVAL, Kind.NOTICE)


class Priority(enum.StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        return {"urgent": 0, "high": 1, "normal": 2}[self.value]


class Source(enum.StrEnum):
    """How a ticket came about."""

    ASK_HUMAN = "ask_human"  # the assistant asked our team (ask_human, or its confidence was low)
    APPROVAL = "approval"  # an action needs an operator's approval
    HANDOVER = "handover"  # the customer asked for a person
    SPECIALIST = "specialist"  # a legal or medical matter: a person answers
    AGENT = "agent"  # another agent, over MCP
    OPERATOR = "operator"  # an operator contacted the customer first (/contact)
    LLM_FAILURE = "llm_failure"  # the assistant could not answer, several times
    RELAY = "relay"  # no AI is configured: every conversation goes to a person
    BUDGET = "budget"  # the customer used up [abuse] tokens_per_day: a person follows up


class Outcome(enum.StrEnum):
    """How a ticket ended up, for the summary and the export (storage/summary.py computes it)."""

    APPROVED = "approved"
    DENIED = "denied"
    ANSWERED = "answered"
    EXPIRED = "expired"  # an agent's approval request nobody decided in time
    TIMED_OUT = "timed out"  # no human answer in time (it stayed open)
    OPEN = "open"
    CLOSED = "closed"


class Status(enum.StrEnum):
    """Where a ticket stands: waiting for a person, or how a person settled it."""

    OPEN = "open"
    ANSWERED = "answered"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"  # an agent's approval request past its time: it can no longer be approved
    CLOSED = "closed"


class DeskOp(enum.StrEnum):
    """What a row of the desk outbox asks of the staff channel (delivered in order per ticket)."""

    OPEN = "open"  # post the card and open its thread
    POST = "post"  # write in the thread (split, or attached as a file when long)
    PING = "ping"  # write in the thread, mentioning the operators
    REFRESH = "refresh"  # re-render the card (status, buttons)
    TRANSCRIPT = "transcript"  # attach the closed ticket's transcript
    ARCHIVE = "archive"  # archive (and lock) the thread
    DRAFT = "draft"  # post the copilot's draft (content: its id) with Send / Edit & send / Discard
    DRAFT_END = "draft end"  # the draft was used or dropped: its message loses its buttons
    ESCALATE = "escalate"  # write in the thread mentioning a role (content: "role id\ntext")
    FILE = "file"  # re-post a kept file in the thread (content: its id in files)


ENDED = (Status.CLOSED, Status.EXPIRED)
# the same, for a WHERE on tickets (prefix the alias)
NOT_ENDED_SQL = "status NOT IN ('closed', 'expired')"


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


@dataclass(frozen=True)
class Ticket:
    id: int
    customer_id: int
    conversation_id: int
    kind: Kind
    source: str
    priority: Priority
    status: Status
    question: str
    reason: str
    action_name: str | None
    action_params: dict[str, Any] | None
    claimed_by: int | None
    claimed_by_name: str | None
    takeover_by: int | None
    takeover_by_name: str | None
    decided_by_name: str | None
    decision_note: str | None
    result: Any
    staff_message_id: int | None
    thread_id: int | None
    created_at: float
    customer_discord_id: int
    customer_name: str
    dm_closed_at: float | None
    agent_name: str | None = None  # the agent whose ticket this is (MCP), else None
    answer: str | None = None  # the first answer a person gave (questions)
    answered_by_name: str | None = None
    idempotency_key: str | None = None
    expires_at: float | None = None  # an agent's approval request: undecided after this, it expires
    timed_out_at: float | None = None  # no person answered within [timeouts] ticket_answer_seconds
    copilot_view: str | None = None  # Claude's one-line reading of an approval's case (an opinion)
    answer_schema: dict[str, Any] | None = None  # an agent's question wants a typed answer (a form)
    answer_data: dict[str, Any] | None = None  # ... and this is it, beside ``answer`` in words
    approvers_needed: int = 1  # distinct operators who must approve (two-person approval)
    escalation_level: int = 0  # [desk] escalation steps reached (each mentioned its role once)
    notify_url: str | None = None  # an agent's ticket: its outcome is POSTed here (webhooks)

    @classmethod
    def from_row(cls, row: Any) -> Ticket:
        return cls(
            id=row["id"],
            customer_id=row["customer_id"],
            conversation_id=row["conversation_id"],
            kind=Kind(row["kind"]),
            source=row["source"],
            priority=Priority(row["priority"]),
            status=Status(row["status"]),
            question=row["question"],
            reason=row["reason"],
            action_name=row["action_name"],
            action_params=json.loads(row["action_params"]) if row["action_params"] else None,
            claimed_by=row["claimed_by"],
            claimed_by_name=row["claimed_by_name"],
            takeover_by=row["takeover_by"],
            takeover_by_name=row["takeover_by_name"],
            decided_by_name=row["decided_by_name"],
            decision_note=row["decision_note"],
            result=json.loads(row["result"]) if row["result"] else None,
            staff_message_id=row["staff_message_id"],
            thread_id=row["thread_id"],
            created_at=row["created_at"],
            customer_discord_id=row["discord_id"],
            customer_name=row["display_name"],
            dm_closed_at=row["dm_closed_at"],
            agent_name=row["agent_name"],
            answer=row["answer"],
            answered_by_name=row["answered_by_name"],
            idempotency_key=row["idempotency_key"],
            expires_at=row["expires_at"],
            timed_out_at=row["timed_out_at"],
            copilot_view=row["copilot_view"],
            answer_schema=_json_or_none(row["answer_schema"]),
            answer_data=_json_or_none(row["answer_data"]),
            approvers_needed=row["approvers_needed"],
            escalation_level=row["escalation_level"],
            notify_url=row["notify_url"],
        )

    @property
    def ended(self) -> bool:
        """Closed, or an agent's request expired: nothing more happens on it."""
        return self.status in ENDED

    @property
    def timed_out(self) -> bool:
        return self.timed_out_at is not None

    @property
    def in_takeover(self) -> bool:
        return self.takeover_by is not None and self.status != Status.CLOSED

    @property
    def awaits_decision(self) -> bool:
        return self.kind.decided and self.status == Status.OPEN
